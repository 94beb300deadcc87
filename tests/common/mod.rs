//! Helpers shared by the integration tests: deterministic weights and hand-built layers.
#![allow(dead_code)] // each test binary uses a different subset

pub mod bound;

use std::sync::OnceLock;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use burn_nalu::{Nac, Nalu, NaluConfig};

/// Deterministic values in `[-scale, scale]` that look random (a hash of the index).
pub fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut z = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 31;
            z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 29;
            (z as f64 / u64::MAX as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Inputs away from zero (|x| in [0.2, 2]) with both signs: `log(|x| + ε)` is smooth there.
pub fn inputs(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    values(rows * cols, seed, 1.0)
        .into_iter()
        .map(|v| v.signum() * (0.2 + 1.8 * v.abs()))
        .collect()
}

/// The parameters of one NALU layer as plain row-major `[d_input, d_output]` vectors.
#[derive(Clone, Debug)]
pub struct NaluWeights {
    pub d_input: usize,
    pub d_output: usize,
    pub w_hat: Vec<f64>,
    pub m_hat: Vec<f64>,
    pub gate: Option<Vec<f64>>,
}

impl NaluWeights {
    pub fn random(d_input: usize, d_output: usize, gated: bool, seed: u64) -> Self {
        let n = d_input * d_output;
        Self {
            d_input,
            d_output,
            w_hat: values(n, seed, 1.5),
            m_hat: values(n, seed + 1, 1.5),
            gate: gated.then(|| values(n, seed + 2, 1.0)),
        }
    }

    fn param(&self, v: &[f64], device: &Device) -> Param<Tensor<2>> {
        Param::from_data(
            TensorData::new(v.to_vec(), [self.d_input, self.d_output]),
            device,
        )
    }

    pub fn nac(&self, device: &Device) -> Nac {
        Nac {
            w_hat: self.param(&self.w_hat, device),
            m_hat: self.param(&self.m_hat, device),
        }
    }

    pub fn nalu(&self, device: &Device) -> Nalu {
        let mut nalu = NaluConfig::new(self.d_input, self.d_output)
            .with_use_gating(self.gate.is_some())
            .init(device);
        nalu.nac = self.nac(device);
        nalu.gate = self.gate.as_ref().map(|g| self.param(g, device));
        nalu
    }
}

/// A `[rows, cols]` tensor from row-major values.
pub fn matrix(v: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, cols]), device)
}

/// A tensor's values as f64, whatever its float dtype.
pub fn to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// The default device, or flex when wgpu is compiled in (and so the default unless
/// `BURN_DEVICE` names a CPU backend): WGSL has no f64, so the f64 tests stay on the CPU.
pub fn cpu_device() -> Device {
    #[cfg(all(feature = "wgpu", feature = "flex"))]
    if !std::env::var("BURN_DEVICE").is_ok_and(|d| matches!(d.as_str(), "flex" | "ndarray")) {
        return Device::flex();
    }
    Device::default()
}

/// [`cpu_device`] with f64 as its float type, configured once before any tensor exists.
pub fn f64_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut device = cpu_device();
            device
                .configure(FloatDType::F64)
                .expect("configure f64 before any tensor is created");
            device
        })
        .clone()
}

/// Every float parameter of `module`, flattened, in visiting order, as f64.
pub fn parameters<M: Module>(module: &M) -> Vec<f64> {
    struct Collect(Vec<f64>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f64>();
            self.0.extend(data.as_slice::<f64>().expect("f64 values"));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}
