//! The static-toy models: two stacked arithmetic units.

use core::fmt;
use core::str::FromStr;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;

use super::data::N_FEATURES;
use crate::formula::{self, Formula, FormulaError, SnapOptions};
use crate::{
    ArithmeticUnit, Inalu, InaluConfig, Nac, NacConfig, Nalu, NaluConfig, Nau, NauConfig, Nmu,
    NmuConfig, Npu, NpuConfig, RealNpu,
};

/// Which two-layer stack to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ModelKind {
    /// `Nalu → Nalu`, as in the NALU paper.
    #[serde(rename = "nalu")]
    Nalu,
    /// `Nac → Nac`: additive only.
    #[serde(rename = "nac")]
    Nac,
    /// `Nau → Nmu`, as in Madsen & Johansen 2020.
    #[serde(rename = "nau-nmu")]
    NauNmu,
    /// `Inalu → Inalu`.
    #[serde(rename = "inalu")]
    Inalu,
    /// `Nau → Npu`: sums, then powers of them.
    #[serde(rename = "npu")]
    Npu,
    /// `Nau → RealNpu`.
    #[serde(rename = "realnpu")]
    RealNpu,
}

impl ModelKind {
    /// All models, in the order reports list them.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Nalu,
        ModelKind::Nac,
        ModelKind::NauNmu,
        ModelKind::Inalu,
        ModelKind::Npu,
        ModelKind::RealNpu,
    ];

    /// Whether the stack has a sparsity regulariser (every stack but NALU's and NAC's).
    pub fn has_regularizer(self) -> bool {
        !matches!(self, ModelKind::Nalu | ModelKind::Nac)
    }

    /// The name used on the command line and in reports (`nalu`, `nau-nmu`, …).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Nalu => "nalu",
            ModelKind::Nac => "nac",
            ModelKind::NauNmu => "nau-nmu",
            ModelKind::Inalu => "inalu",
            ModelKind::Npu => "npu",
            ModelKind::RealNpu => "realnpu",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model '{s}' (expected one of {})", names.join(", "))
            })
    }
}

/// Two units in sequence: `output(hidden(x))`.
#[derive(Module, Debug)]
pub struct Stack<A: ArithmeticUnit, B: ArithmeticUnit> {
    /// First layer, `[.., 100] → [.., hidden]`.
    pub hidden: A,
    /// Second layer, `[.., hidden] → [.., 1]`.
    pub output: B,
}

impl<A: ArithmeticUnit, B: ArithmeticUnit> Stack<A, B> {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.hidden.forward(x))
    }

    fn regularization(&self) -> Option<Tensor<1>> {
        match (self.hidden.regularization(), self.output.regularization()) {
            (Some(a), Some(b)) => Some(a.add(b)),
            (a, b) => a.or(b),
        }
    }

    fn project(self) -> Self {
        Self {
            hidden: self.hidden.project(),
            output: self.output.project(),
        }
    }
}

/// A static-toy model: one of the [`ModelKind`] stacks.
// One model lives per run and moves once per optimizer step: the size of the largest variant
// (iNALU, under 1 KiB of parameter handles) costs nothing there, while boxing it would take
// the variants out of `#[derive(Module)]`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum StaticToyModel {
    /// `Nalu → Nalu`.
    Nalu(Stack<Nalu, Nalu>),
    /// `Nac → Nac`.
    Nac(Stack<Nac, Nac>),
    /// `Nau → Nmu`.
    NauNmu(Stack<Nau, Nmu>),
    /// `Inalu → Inalu`.
    Inalu(Stack<Inalu, Inalu>),
    /// `Nau → Npu`.
    Npu(Stack<Nau, Npu>),
    /// `Nau → RealNpu`.
    RealNpu(Stack<Nau, RealNpu>),
}

/// Runs `$body` with `$stack` bound to the stack inside whichever variant `$model` is.
macro_rules! with_stack {
    ($model:expr, $stack:ident => $body:expr) => {
        match $model {
            StaticToyModel::Nalu($stack) => $body,
            StaticToyModel::Nac($stack) => $body,
            StaticToyModel::NauNmu($stack) => $body,
            StaticToyModel::Inalu($stack) => $body,
            StaticToyModel::Npu($stack) => $body,
            StaticToyModel::RealNpu($stack) => $body,
        }
    };
}

/// Rebuilds the variant `$model` is, with `$stack` mapped through `$body`.
macro_rules! map_stack {
    ($model:expr, $stack:ident => $body:expr) => {
        match $model {
            StaticToyModel::Nalu($stack) => StaticToyModel::Nalu($body),
            StaticToyModel::Nac($stack) => StaticToyModel::Nac($body),
            StaticToyModel::NauNmu($stack) => StaticToyModel::NauNmu($body),
            StaticToyModel::Inalu($stack) => StaticToyModel::Inalu($body),
            StaticToyModel::Npu($stack) => StaticToyModel::Npu($body),
            StaticToyModel::RealNpu($stack) => StaticToyModel::RealNpu($body),
        }
    };
}

/// Burn's backend random generators are process-wide: seeding and drawing the initial weights
/// must not interleave with another thread doing the same.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

fn stack<A: ArithmeticUnit, B: ArithmeticUnit>(hidden: A, output: B) -> Stack<A, B> {
    Stack { hidden, output }
}

impl StaticToyModel {
    /// A freshly initialised `kind` stack (`100 → hidden → 1`) whose weights depend only on
    /// `seed` (and the backend).
    pub fn init(kind: ModelKind, hidden: usize, seed: u64, device: &Device) -> Self {
        let _guard = SEEDED_INIT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let (n, h) = (N_FEATURES, hidden);
        let nau = || NauConfig::new(n, h).init(device);
        let model = match kind {
            ModelKind::Nalu => Self::Nalu(stack(
                NaluConfig::new(n, h).init(device),
                NaluConfig::new(h, 1).init(device),
            )),
            ModelKind::Nac => Self::Nac(stack(
                NacConfig::new(n, h).init(device),
                NacConfig::new(h, 1).init(device),
            )),
            ModelKind::NauNmu => Self::NauNmu(stack(nau(), NmuConfig::new(h, 1).init(device))),
            ModelKind::Inalu => Self::Inalu(stack(
                InaluConfig::new(n, h).init(device),
                InaluConfig::new(h, 1).init(device),
            )),
            ModelKind::Npu => Self::Npu(stack(nau(), NpuConfig::new(h, 1).init(device))),
            ModelKind::RealNpu => {
                Self::RealNpu(stack(nau(), NpuConfig::new(h, 1).init_real(device)))
            }
        };
        // Parameters are drawn lazily on first use: draw them now, under the lock.
        model.forward(Tensor::zeros([1, N_FEATURES], device));
        model
    }

    /// Which stack this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Nalu(_) => ModelKind::Nalu,
            Self::Nac(_) => ModelKind::Nac,
            Self::NauNmu(_) => ModelKind::NauNmu,
            Self::Inalu(_) => ModelKind::Inalu,
            Self::Npu(_) => ModelKind::Npu,
            Self::RealNpu(_) => ModelKind::RealNpu,
        }
    }

    /// `output(hidden(x))`: `[batch, 100] → [batch, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        with_stack!(self, s => s.forward(x))
    }

    /// The sum of the layers' sparsity regularisers, `None` for stacks without any.
    pub fn regularization(&self) -> Option<Tensor<1>> {
        with_stack!(self, s => s.regularization())
    }

    /// Clamps every layer's constrained parameters (after an optimizer step).
    pub fn project(self) -> Self {
        map_stack!(self, s => s.project())
    }

    /// The formula the stack computes, its weights snapped to discrete values (see
    /// [`crate::formula`]); `x` is the data the gates are judged on. NALU, NAC and NAU → NMU
    /// stacks only.
    pub fn formula(&self, x: Tensor<2>, options: &SnapOptions) -> Result<Formula, FormulaError> {
        match self {
            Self::Nalu(s) => formula::extract(&[&s.hidden, &s.output], x, options),
            Self::Nac(s) => formula::extract(&[&s.hidden, &s.output], x, options),
            Self::NauNmu(s) => formula::extract(&[&s.hidden, &s.output], x, options),
            Self::Inalu(_) => Err(FormulaError::Unsupported("iNALU")),
            Self::Npu(_) => Err(FormulaError::Unsupported("NPU")),
            Self::RealNpu(_) => Err(FormulaError::Unsupported("RealNPU")),
        }
    }

    /// Restarts an iNALU stack from fresh weights (see [`Inalu::reinitialize`]); other stacks
    /// are returned unchanged.
    pub fn reinitialize(self) -> Self {
        match self {
            Self::Inalu(s) => Self::Inalu(stack(s.hidden.reinitialize(), s.output.reinitialize())),
            other => other,
        }
    }
}

/// Mean squared error of `model` on `(x, y)`: the f32 outputs' squared errors summed on the host
/// in f64, in row order, so that the number does not depend on a backend's summation order.
pub fn mse(model: &StaticToyModel, x: Tensor<2>, y: Tensor<2>) -> f64 {
    let host = |t: Tensor<2>| t.into_data().convert::<f64>().try_into_vec::<f64>();
    let (pred, y) = (host(model.forward(x)), host(y));
    let (pred, y) = (pred.expect("float outputs"), y.expect("float targets"));
    let total: f64 = pred.iter().zip(&y).map(|(p, t)| (p - t).powi(2)).sum();
    total / y.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights() {
        let device = Device::default();
        let w = |seed| {
            let StaticToyModel::Nalu(s) = StaticToyModel::init(ModelKind::Nalu, 2, seed, &device)
            else {
                unreachable!()
            };
            s.hidden.nac.w_hat.val().into_data()
        };
        assert_eq!(w(3), w(3));
        assert_ne!(w(3), w(4));
    }

    #[test]
    fn every_kind_builds_and_maps_100_inputs_to_one_output() {
        let device = Device::default();
        for kind in ModelKind::ALL {
            let model = StaticToyModel::init(kind, 2, 0, &device);
            assert_eq!(model.kind(), kind);
            assert_eq!(
                model.forward(Tensor::ones([3, N_FEATURES], &device)).dims(),
                [3, 1]
            );
            assert_eq!(
                model.regularization().is_some(),
                kind.has_regularizer(),
                "{kind}"
            );
        }
    }

    #[test]
    fn model_names_round_trip() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
        }
        assert_eq!(
            "mlp".parse::<ModelKind>().unwrap_err(),
            "unknown model 'mlp' (expected one of nalu, nac, nau-nmu, inalu, npu, realnpu)"
        );
    }

    #[test]
    fn mse_is_mean_of_squared_errors() {
        let device = Device::default();
        let model = StaticToyModel::init(ModelKind::Nalu, 2, 0, &device);
        let x = Tensor::<2>::ones([2, N_FEATURES], &device);
        let pred = model.forward(x.clone()).into_data().convert::<f64>();
        let p = pred.try_to_vec::<f64>().unwrap();
        let y = Tensor::<2>::from_data([[1.0f32], [-2.0]], &device);
        let expected = ((p[0] - 1.0).powi(2) + (p[1] + 2.0).powi(2)) / 2.0;
        // Both from the same f32 outputs, summed in f64: a few f64 roundings apart.
        assert!((mse(&model, x, y) - expected).abs() <= 4.0 * f64::EPSILON * expected);
    }
}
