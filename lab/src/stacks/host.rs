//! The layers of the trainer's host step for the models whose every layer has host kernels.

use super::LabModel;
use burn_nalu::internals::{HostLayer, host};
use burn_nalu::{Inalu, Nac, NacMul, Nalu, Nau, Nmru, Nmu, Npu, Nru, RealNpu, Snmu};

impl LabModel {
    /// The layers of the trainer's host step (`ops::host`), in parameter order, of a population
    /// of `members` of this model, where every layer has host kernels (NAU → NAU, NAU → NMU,
    /// gated NALU → NALU, NAC → NAC, NAC → NAC•, NAU → NPU, NAU → RealNPU with learned gates and
    /// its default regulariser, NAU → NRU, NAU → NMRU, NAU → sNMU, iNALU → iNALU); `None` for
    /// the models that train through Burn's ops.
    pub(crate) fn host_layers(&self, members: usize) -> Option<Vec<HostLayer>> {
        let nau = |u: &Nau| HostLayer::Nau {
            d_in: u.d_input() / members,
            d_out: u.d_output(),
        };
        let nmu = |u: &Nmu| HostLayer::Nmu {
            d_in: u.d_input() / members,
            d_out: u.d_output(),
        };
        // The gated NALU in base e only: the ungated one and the G-NALU take other formulas.
        let nalu = |u: &Nalu| {
            (u.gate.as_ref())
                .filter(|_| u.log_base() == 1.0)
                .map(|_| HostLayer::Nalu {
                    d_in: u.d_input() / members,
                    d_out: u.d_output(),
                    eps: u.epsilon(),
                })
        };
        let nac = |u: &Nac| HostLayer::Nac {
            d_in: u.d_input() / members,
            d_out: u.d_output(),
        };
        let nac_mul = |u: &NacMul| HostLayer::NacMul {
            d_in: u.d_input() / members,
            d_out: u.d_output(),
            eps: u.epsilon(),
        };
        let npu = |u: &Npu| {
            HostLayer::Npu(host::Npu {
                d_in: u.d_input() / members,
                d_out: u.d_output(),
                eps: u.epsilon(),
                imaginary: true,
                clamp_powers: false,
            })
        };
        let real_npu = |u: &RealNpu| {
            u.host_clamp_powers().map(|clamp_powers| {
                HostLayer::Npu(host::Npu {
                    d_in: u.d_input() / members,
                    d_out: u.d_output(),
                    eps: u.epsilon(),
                    imaginary: false,
                    clamp_powers,
                })
            })
        };
        let nru = |u: &Nru| {
            HostLayer::Nru(host::Nru {
                d_in: u.d_input() / members,
                d_out: u.d_output(),
            })
        };
        let nmru = |u: &Nmru| {
            HostLayer::Nmru(host::Nmru {
                d_in: u.d_input() / members,
                d_out: u.d_output(),
                eps: u.epsilon(),
            })
        };
        let inalu = |u: &Inalu| {
            HostLayer::Inalu(host::Inalu {
                d_in: u.d_input() / members,
                d_out: u.d_output(),
                eps: u.epsilon(),
                omega: u.omega(),
            })
        };
        let snmu = |u: &Snmu| {
            let (noise_low, noise_high) = u.noise_range();
            HostLayer::Snmu(host::Snmu {
                d_in: u.d_input() / members,
                d_out: u.d_output(),
                noise_low,
                noise_high,
            })
        };
        match self {
            Self::Nau(s) => Some(vec![nau(&s.hidden), nau(&s.output)]),
            Self::NauNmu(s) => Some(vec![nau(&s.hidden), nmu(&s.output)]),
            Self::Nalu(s) => Some(vec![nalu(&s.hidden)?, nalu(&s.output)?]),
            Self::Nac(s) => Some(vec![nac(&s.hidden), nac(&s.output)]),
            Self::NacMul(s) => Some(vec![nac(&s.hidden), nac_mul(&s.output)]),
            Self::Npu(s) => Some(vec![nau(&s.hidden), npu(&s.output)]),
            Self::RealNpu(s) => Some(vec![nau(&s.hidden), real_npu(&s.output)?]),
            Self::NauNru(s) => Some(vec![nau(&s.hidden), nru(&s.output)]),
            Self::NauNmru(s) => Some(vec![nau(&s.hidden), nmru(&s.output)]),
            Self::Inalu(s) => Some(vec![inalu(&s.hidden), inalu(&s.output)]),
            Self::NauSnmu(s) => Some(vec![nau(&s.hidden), snmu(&s.output)]),
            _ => None,
        }
    }
}
