//! How the layers of a model are drawn: the [`InitScheme`] and the layer builder [`Layers`].

use burn::nn::Initializer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::models::Accumulator;
use burn_nalu::nalu::GOLDEN_RATIO;
use burn_nalu::{
    ArithmeticUnit, Dmu, DmuConfig, Hill, HillConfig, HillPrimitive, Inalu, InaluConfig, Nac,
    NacConfig, NacMul, NacMulConfig, Nalu, NaluConfig, Nau, NauConfig, Nmru, NmruConfig, Nmu,
    NmuConfig, Npu, NpuConfig, Nru, NruConfig, RealNpu, RealNpuConfig, RecurrentCell,
    RecurrentCellConfig, Snmu, SnmuConfig,
};

/// How the NAC and NALU weights are drawn (NAU, NMU, iNALU and the NPUs have one scheme each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// Xavier-uniform, as the Keras reference's `glorot_uniform`.
    #[default]
    Reference,
    /// Madsen & Johansen's: `Ŵ, M̂ ~ U[−r, r]` with `r` such that `fan·Var(W) = 2`
    /// (`fan = max(d_in + d_out, 5)`), the NALU gate Xavier-uniform.
    Madsen,
}

/// `r` of Madsen & Johansen's NAC initialisation: `fan·Var(tanh(Ŵ)·σ(M̂)) = 2` for
/// `Ŵ, M̂ ~ U[−r, r]`, `Var = (1 − tanh(r)/r)·(r − tanh(r/2))/(2r)`, solved by bisection.
pub fn madsen_nac_range(d_in: usize, d_out: usize) -> f64 {
    let fan = (d_in + d_out).max(5) as f64;
    let variance = |r: f64| (1.0 - r.tanh() / r) * (r - (r / 2.0).tanh()) / (2.0 * r);
    let (mut lo, mut hi) = (1e-9, 10.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if fan * variance(mid) < 2.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Builds the layers of a stack on one device with one [`InitScheme`].
pub struct Layers<'a> {
    pub(super) scheme: InitScheme,
    pub(super) device: &'a Device,
}

impl Layers<'_> {
    fn nac_init(&self, d_in: usize, d_out: usize) -> Initializer {
        match self.scheme {
            InitScheme::Reference => Initializer::XavierUniform { gain: 1.0 },
            InitScheme::Madsen => {
                let r = madsen_nac_range(d_in, d_out);
                Initializer::Uniform { min: -r, max: r }
            }
        }
    }

    pub(super) fn nac(&self, d_in: usize, d_out: usize) -> Nac {
        let init = self.nac_init(d_in, d_out);
        NacConfig::new(d_in, d_out)
            .with_initializer(init)
            .init(self.device)
    }

    pub(super) fn nac_mul(&self, d_in: usize, d_out: usize) -> NacMul {
        let init = self.nac_init(d_in, d_out);
        NacMulConfig::new(d_in, d_out)
            .with_initializer(init)
            .init(self.device)
    }

    pub(super) fn nalu(&self, d_in: usize, d_out: usize) -> Nalu {
        self.nalu_in_base(d_in, d_out, std::f64::consts::E)
    }

    /// The G-NALU: [`Self::nalu`] in base φ.
    pub(super) fn gnalu(&self, d_in: usize, d_out: usize) -> Nalu {
        self.nalu_in_base(d_in, d_out, GOLDEN_RATIO)
    }

    fn nalu_in_base(&self, d_in: usize, d_out: usize, base: f64) -> Nalu {
        let config = NaluConfig::new(d_in, d_out)
            .with_initializer(self.nac_init(d_in, d_out))
            .with_base(base);
        let config = match self.scheme {
            InitScheme::Reference => config,
            InitScheme::Madsen => {
                config.with_gate_initializer(Some(Initializer::XavierUniform { gain: 1.0 }))
            }
        };
        config.init(self.device)
    }

    /// The DMU of `depth` steps (one: as its authors' benchmark runs it).
    pub(super) fn dmu(&self, d_in: usize, depth: usize) -> Dmu {
        DmuConfig::new(d_in).with_depth(depth).init(self.device)
    }

    /// The DMU of one step whose operands are frozen to `[1, b]` on the first two inputs, as
    /// its authors' benchmark script ran it (`--freeze-O`).
    pub(super) fn dmu_frozen(&self, d_in: usize, b: f64) -> Dmu {
        let mut operands = vec![0.0; d_in + 1];
        (operands[0], operands[1]) = (1.0, b);
        let config = DmuConfig::new(d_in).with_frozen_operands(Some(operands));
        config.init(self.device)
    }

    pub(super) fn nau(&self, d_in: usize, d_out: usize) -> Nau {
        NauConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn nmu(&self, d_in: usize, d_out: usize) -> Nmu {
        NmuConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn inalu(&self, d_in: usize, d_out: usize) -> Inalu {
        InaluConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn npu(&self, d_in: usize, d_out: usize) -> Npu {
        NpuConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn real_npu(&self, d_in: usize, d_out: usize) -> RealNpu {
        RealNpuConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn real_npu_naive(&self, d_in: usize, d_out: usize) -> RealNpu {
        RealNpuConfig::naive(d_in, d_out).init(self.device)
    }

    pub(super) fn real_npu_mistry(&self, d_in: usize, d_out: usize) -> RealNpu {
        RealNpuConfig::mistry(d_in, d_out).init(self.device)
    }

    /// A Hill Space unit from DuJardin's zero weights: a single module, every seed from the
    /// same start.
    pub(super) fn hill(&self, d_in: usize, d_out: usize, primitive: HillPrimitive) -> Hill {
        HillConfig::new(d_in, d_out)
            .with_primitive(primitive)
            .init(self.device)
    }

    /// A Hill Space unit drawn as the NAC is: in a stack, zero weights would keep the hidden
    /// units equal (each gets the same gradient) and so never tell `a` from `b`.
    pub(super) fn hill_drawn(&self, d_in: usize, d_out: usize, primitive: HillPrimitive) -> Hill {
        HillConfig::new(d_in, d_out)
            .with_primitive(primitive)
            .with_initializer(self.nac_init(d_in, d_out))
            .init(self.device)
    }

    pub(super) fn snmu(&self, d_in: usize, d_out: usize) -> Snmu {
        SnmuConfig::new(d_in, d_out).init(self.device)
    }

    /// A recurrent cell of `inputs` per step and `hidden` state around `unit(in, out)`.
    pub(super) fn cell<U: ArithmeticUnit>(
        &self,
        inputs: usize,
        hidden: usize,
        unit: impl FnOnce(usize, usize) -> U,
    ) -> RecurrentCell<U> {
        RecurrentCellConfig::new(inputs, hidden).init(self.device, unit)
    }

    /// A cell of `inputs` per step around `unit(in, 1)`, its one state fixed to start at
    /// `initial` (the operation's identity, as `stable-nalu`'s sequential networks).
    pub(super) fn accumulator<U: ArithmeticUnit>(
        &self,
        inputs: usize,
        initial: f64,
        unit: impl FnOnce(usize, usize) -> U,
    ) -> Accumulator<U> {
        let cell = RecurrentCellConfig::new(inputs, 1)
            .with_initial_state(initial)
            .with_learn_initial_state(false)
            .init(self.device, unit);
        Accumulator { cell }
    }

    pub(super) fn nru(&self, d_in: usize, d_out: usize) -> Nru {
        NruConfig::new(d_in, d_out).init(self.device)
    }

    pub(super) fn nmru(&self, d_in: usize, d_out: usize) -> Nmru {
        NmruConfig::new(d_in, d_out).init(self.device)
    }
}
