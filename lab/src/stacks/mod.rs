//! The models of the experiments: two units in sequence ([`Stack`]), one alone ([`Single`]), a
//! recurrent cell then a unit ([`Recurrent`]) or a cell read at every step ([`Accumulator`]),
//! and the one list of them.
//!
//! Every model the experiments know is one line of the [`stacks!`] table below: its name, its
//! units and how to build them. [`ModelKind`], the [`LabModel`] enum, their names and
//! parsing, initialisation and the formula read-back all follow from that line. To train a new
//! unit in the experiments, write the unit (its own file, implementing
//! [`ArithmeticUnit`]), add a line here, and give it a recipe in
//! [`TrainConfig::recipe`](super::TrainConfig::recipe).

use core::fmt;
use core::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::names::parse_name;
use super::protocol::Rows;
use burn_nalu::formula::{Formula, FormulaError, SnapOptions};
use burn_nalu::{
    ArithmeticUnit, Dmu, Hill, HillPrimitive, Inalu, Nac, NacMul, Nalu, Nau, Nmru, Nmu, Npu, Nru,
    RealNpu, Snmu,
};

mod formula;
#[cfg(feature = "flex")]
mod host;
mod layers;
mod models;

pub use layers::{InitScheme, Layers, madsen_nac_range};
pub use models::{Accumulator, Recurrent, Single, Stack};

/// The table of models. Each line: doc comment, variant `= "name"`: the model's type `=` how to
/// build it from the layer builder, the input width and the hidden width.
macro_rules! stacks {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal: $model:ty = |$layers:ident, $n:ident, $h:ident| $build:expr;
    )*) => {
        /// Which model to train (see the module docs for the list).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ModelKind {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl ModelKind {
            /// All models, in the order reports list them.
            pub const ALL: &'static [ModelKind] = &[$(ModelKind::$variant),*];

            /// The name used on the command line and in reports (`nalu`, `nau-nmu`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $(ModelKind::$variant => $name,)*
                }
            }

            /// What the stack is, in a line (its line of the table's documentation).
            pub fn summary(self) -> &'static str {
                match self {
                    $(ModelKind::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }

            /// Whether the stack has a sparsity regulariser.
            pub fn has_regularizer(self) -> bool {
                match self {
                    $(ModelKind::$variant => <$model>::REGULARIZED,)*
                }
            }
        }

        /// A model of the experiments: one of the [`ModelKind`] models.
        // One model lives per run and moves once per optimizer step: the size of the largest
        // variant costs nothing there, while boxing it would take the variants out of
        // `#[derive(Module)]`.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum LabModel {
            $($(#[doc = $doc])* $variant($model),)*
        }

        impl LabModel {
            fn build(kind: ModelKind, layers: Layers, inputs: usize, hidden: usize) -> Self {
                match kind {
                    $(ModelKind::$variant => {
                        let ($layers, $n, $h) = (&layers, inputs, hidden);
                        Self::$variant($build)
                    })*
                }
            }

            /// Which stack this is.
            pub fn kind(&self) -> ModelKind {
                match self {
                    $(Self::$variant(_) => ModelKind::$variant,)*
                }
            }

            /// The formula the stack computes, its weights snapped to discrete values (see
            /// [`burn_nalu::formula`]); `x` is the data the gates are judged on.
            pub fn formula(
                &self,
                x: Tensor<2>,
                options: &SnapOptions,
            ) -> Result<Formula, FormulaError> {
                match self {
                    $(Self::$variant(s) => s.formula(x, options),)*
                }
            }
        }

        impl ArithmeticUnit for LabModel {
            fn forward_members<const D: usize>(
                &self,
                input: Tensor<D>,
                members: usize,
            ) -> Tensor<D> {
                match self {
                    $(Self::$variant(s) => s.forward_members(input, members),)*
                }
            }

            fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
                match self {
                    $(Self::$variant(s) => s.regularizer_members(members),)*
                }
            }

            fn clamp_members(self) -> Self {
                match self {
                    $(Self::$variant(s) => Self::$variant(s.clamp_members()),)*
                }
            }

            fn snap(self) -> Self {
                match self {
                    $(Self::$variant(s) => Self::$variant(s.snap()),)*
                }
            }

            fn snap_halves(self) -> Self {
                match self {
                    $(Self::$variant(s) => Self::$variant(s.snap_halves()),)*
                }
            }
        }
    };
}

stacks! {
    /// `Nalu → Nalu`, as in the NALU paper.
    Nalu = "nalu": Stack<Nalu, Nalu> = |l, n, h| Stack::new(l.nalu(n, h), l.nalu(h, 1));
    /// `Nac → Nac` (Madsen & Johansen's NAC+): sums and differences only.
    Nac = "nac": Stack<Nac, Nac> = |l, n, h| Stack::new(l.nac(n, h), l.nac(h, 1));
    /// `Nac → NacMul` (their NAC•): sums, then a product of their magnitudes.
    NacMul = "nac-mul": Stack<Nac, NacMul> = |l, n, h| Stack::new(l.nac(n, h), l.nac_mul(h, 1));
    /// `Nau → Nau`: Madsen & Johansen's model for `+` and `−`.
    Nau = "nau": Stack<Nau, Nau> = |l, n, h| Stack::new(l.nau(n, h), l.nau(h, 1));
    /// `Nau → Nmu`: their model for `×` and `z²`.
    NauNmu = "nau-nmu": Stack<Nau, Nmu> = |l, n, h| Stack::new(l.nau(n, h), l.nmu(h, 1));
    /// `Inalu → Inalu`.
    Inalu = "inalu": Stack<Inalu, Inalu> = |l, n, h| Stack::new(l.inalu(n, h), l.inalu(h, 1));
    /// `Nau → Npu`: sums, then real powers of them.
    Npu = "npu": Stack<Nau, Npu> = |l, n, h| Stack::new(l.nau(n, h), l.npu(h, 1));
    /// `Nau → RealNpu`.
    RealNpu = "realnpu": Stack<Nau, RealNpu> = |l, n, h| Stack::new(l.nau(n, h), l.real_npu(h, 1));
    /// `Nau → RealNpu` with every gate held open (Heim et al.'s naive NPU): powers of sums.
    NaiveNpu = "naive-npu": Stack<Nau, RealNpu> = |l, n, h| Stack::new(l.nau(n, h), l.real_npu_naive(h, 1));
    /// `Nau → Nru`: sums, then their quotients and products (Mistry et al.'s NRU).
    NauNru = "nau-nru": Stack<Nau, Nru> = |l, n, h| Stack::new(l.nau(n, h), l.nru(h, 1));
    /// `Nau → Nmru`: sums, then their quotients and products (Mistry et al.'s NMRU).
    NauNmru = "nau-nmru": Stack<Nau, Nmru> = |l, n, h| Stack::new(l.nau(n, h), l.nmru(h, 1));
    /// `Nau → Snmu`: sums, then their product, with noise while training (Mistry et al.'s sNMU).
    NauSnmu = "nau-snmu": Stack<Nau, Snmu> = |l, n, h| Stack::new(l.nau(n, h), l.snmu(h, 1));
    /// `Snmu` alone, on the inputs (the single-module task's model).
    Snmu = "snmu": Single<Snmu> = |l, n, _h| Single::of(l.snmu(n, 1));
    /// `Nru` alone, on the inputs (the single-module task's model).
    Nru = "nru": Single<Nru> = |l, n, _h| Single::of(l.nru(n, 1));
    /// `Nmru` alone, on the inputs (the single-module task's model).
    Nmru = "nmru": Single<Nmru> = |l, n, _h| Single::of(l.nmru(n, 1));
    /// `Hill` (additive) → `Hill` (additive), drawn as the NAC: DuJardin's unit on sums.
    Hill = "hill": Stack<Hill, Hill> = |l, n, h| Stack::new(l.hill_drawn(n, h, HillPrimitive::Additive), l.hill_drawn(h, 1, HillPrimitive::Additive));
    /// `Hill` (additive) → `Hill` (exponential): sums, then their products and quotients.
    HillExp = "hill-exp": Stack<Hill, Hill> = |l, n, h| Stack::new(l.hill_drawn(n, h, HillPrimitive::Additive), l.hill_drawn(h, 1, HillPrimitive::Exponential));
    /// `Hill` (additive) alone, on the inputs, from zero weights (the single-module task's model).
    HillAdd = "hill-add": Single<Hill> = |l, n, _h| Single::of(l.hill(n, 1, HillPrimitive::Additive));
    /// `Hill` (exponential) alone, on the inputs, from zero weights (the single-module task's model).
    HillMul = "hill-mul": Single<Hill> = |l, n, _h| Single::of(l.hill(n, 1, HillPrimitive::Exponential));
    /// `Nac` alone, on the inputs (the single-module task's model, as the Primer's).
    SingleNac = "nac-single": Single<Nac> = |l, n, _h| Single::of(l.nac(n, 1));
    /// `NacMul` alone, on the inputs (the single-module task's model).
    SingleNacMul = "nac-mul-single": Single<NacMul> = |l, n, _h| Single::of(l.nac_mul(n, 1));
    /// `Nalu` alone, on the inputs (the single-module task's model).
    SingleNalu = "nalu-single": Single<Nalu> = |l, n, _h| Single::of(l.nalu(n, 1));
    /// The DMU (one step) alone, on the inputs (its authors' single-module model).
    SingleDmu = "dmu-single": Single<Dmu> = |l, n, _h| Single::of(l.dmu(n, 1));
    /// The DMU of one step with its operands frozen to `[1, 1]` (its authors' benchmark protocol
    /// for `+` and `×`: only the gate learned).
    DmuFrozenSum = "dmu-frozen-sum": Single<Dmu> = |l, n, _h| Single::of(l.dmu_frozen(n, 1.0));
    /// The DMU of one step with its operands frozen to `[1, −1]` (their protocol for `−`, `÷`).
    DmuFrozenDiff = "dmu-frozen-diff": Single<Dmu> = |l, n, _h| Single::of(l.dmu_frozen(n, -1.0));
    /// The DMU of three steps (room for `a`, `b` and `a ∘ b`) with its output selector, alone.
    Dmu = "dmu": Single<Dmu> = |l, n, _h| Single::of(l.dmu(n, 3));
    /// The G-NALU (`Nalu` in base φ) alone, on the inputs (the Primer's single-module model).
    SingleGnalu = "gnalu-single": Single<Nalu> = |l, n, _h| Single::of(l.gnalu(n, 1));
    /// `Nau` alone, on the inputs (the single-module task's model).
    SingleNau = "nau-single": Single<Nau> = |l, n, _h| Single::of(l.nau(n, 1));
    /// `Nmu` alone, on the inputs (the single-module task's model).
    SingleNmu = "nmu-single": Single<Nmu> = |l, n, _h| Single::of(l.nmu(n, 1));
    /// `Inalu` alone, on the inputs (the single-module task's model).
    SingleInalu = "inalu-single": Single<Inalu> = |l, n, _h| Single::of(l.inalu(n, 1));
    /// `Npu` alone, on the inputs (the single-module task's model).
    SingleNpu = "npu-single": Single<Npu> = |l, n, _h| Single::of(l.npu(n, 1));
    /// `RealNpu` alone, on the inputs (the single-module task's model).
    SingleRealNpu = "realnpu-single": Single<RealNpu> = |l, n, _h| Single::of(l.real_npu(n, 1));
    /// `Nalu` cell, then `Nalu` on its last state (the NALU paper's recurrent model).
    NaluRnn = "nalu-rnn": Recurrent<Nalu, Nalu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nalu(i, o)), l.nalu(h, 1));
    /// `Nac` cell, then `Nac`.
    NacRnn = "nac-rnn": Recurrent<Nac, Nac> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nac(i, o)), l.nac(h, 1));
    /// `Nau` cell (running sums), then `Nau`.
    NauRnn = "nau-rnn": Recurrent<Nau, Nau> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nau(i, o)), l.nau(h, 1));
    /// `Nau` cell (running sums), then `Nmu`.
    NauNmuRnn = "nau-nmu-rnn": Recurrent<Nau, Nmu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nau(i, o)), l.nmu(h, 1));
    /// `Inalu` cell, then `Inalu`.
    InaluRnn = "inalu-rnn": Recurrent<Inalu, Inalu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.inalu(i, o)), l.inalu(h, 1));
    /// `Nau` cell (running sums), then `Npu`.
    NpuRnn = "npu-rnn": Recurrent<Nau, Npu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nau(i, o)), l.npu(h, 1));
    /// `Nau` cell (running sums), then `RealNpu`.
    RealNpuRnn = "realnpu-rnn": Recurrent<Nau, RealNpu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nau(i, o)), l.real_npu(h, 1));
    /// `Nau` cell (running sums), then `RealNpu` with every gate held open (the naive NPU):
    /// powers of the sums themselves, with no gate for an initial state to hide behind.
    NaiveNpuRnn = "naive-npu-rnn": Recurrent<Nau, RealNpu> = |l, n, h| Recurrent::of(l.cell(n, h, |i, o| l.nau(i, o)), l.real_npu_naive(h, 1));
    /// Mistry et al.'s modified `RealNpu` alone (`RealNpuConfig::mistry`).
    RealNpuMistry = "realnpu-mod": Single<RealNpu> = |l, n, _h| Single::of(l.real_npu_mistry(n, 1));
    /// `Nau` cell from `h_0 = 0`, read at every step (Madsen & Johansen's running sum).
    NauCell = "nau-cell": Accumulator<Nau> = |l, n, _h| l.accumulator(n, 0.0, |i, o| l.nau(i, o));
    /// `Nmu` cell from `h_0 = 1`, read at every step (their running product).
    NmuCell = "nmu-cell": Accumulator<Nmu> = |l, n, _h| l.accumulator(n, 1.0, |i, o| l.nmu(i, o));
    /// `Nac` cell from `h_0 = 0`, read at every step (their NAC+ baseline).
    NacCell = "nac-cell": Accumulator<Nac> = |l, n, _h| l.accumulator(n, 0.0, |i, o| l.nac(i, o));
    /// `NacMul` cell from `h_0 = 1`, read at every step (their NAC• baseline).
    NacMulCell = "nac-mul-cell": Accumulator<NacMul> = |l, n, _h| l.accumulator(n, 1.0, |i, o| l.nac_mul(i, o));
    /// `Nalu` cell from `h_0 = 0`, read at every step (their NALU baseline).
    NaluCell = "nalu-cell": Accumulator<Nalu> = |l, n, _h| l.accumulator(n, 0.0, |i, o| l.nalu(i, o));
}

impl ModelKind {
    /// The rows the model reads ([`Protocol::rows`](super::Protocol::rows)): whole rows, a
    /// sequence read after its last step, or a sequence read after every step.
    pub fn rows(self) -> Rows {
        use ModelKind::*;
        match self {
            NaluRnn | NacRnn | NauRnn | NauNmuRnn | InaluRnn | NpuRnn | RealNpuRnn
            | NaiveNpuRnn => Rows::Sequence,
            NauCell | NmuCell | NacCell | NacMulCell | NaluCell => Rows::Running,
            _ => Rows::Static,
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
        parse_name(s, "model", ModelKind::ALL, ModelKind::name)
    }
}

impl LabModel {
    /// A freshly initialised `kind` stack (`inputs → hidden → 1`), its parameters drawn now from
    /// the device's generator in the order the forward pass first reads them (seed the device
    /// first, or build it through [`Population::init`](burn_nalu::Population::init)).
    pub fn init(
        kind: ModelKind,
        scheme: InitScheme,
        inputs: usize,
        hidden: usize,
        device: &Device,
    ) -> Self {
        let layers = Layers { scheme, device };
        let model = Self::build(kind, layers, inputs, hidden);
        model.forward_members(Tensor::<2>::zeros([1, inputs], device), 1);
        model
    }

    /// `output(hidden(x))`: `[batch, inputs] → [batch, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_members(x, 1)
    }

    /// Restarts an iNALU model (the stack or the unit alone) from fresh weights (see
    /// [`Inalu::reinitialize`]); other models are returned unchanged.
    pub fn reinitialize(self) -> Self {
        match self {
            Self::Inalu(s) => Self::Inalu(Stack {
                hidden: s.hidden.reinitialize(),
                output: s.output.reinitialize(),
            }),
            Self::SingleInalu(s) => Self::SingleInalu(Single::of(s.unit.reinitialize())),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_nalu::Population;

    /// With 100 inputs per step, a row of 100 is one step for the recurrent models: one output.
    #[test]
    fn every_kind_builds_and_maps_its_inputs_to_one_output() {
        let device = Device::default();
        for &kind in ModelKind::ALL {
            let model = LabModel::init(kind, InitScheme::Reference, 100, 2, &device);
            assert_eq!(model.kind(), kind);
            assert_eq!(
                model.forward(Tensor::ones([3, 100], &device)).dims(),
                [3, 1]
            );
            let reg = model.regularizer_members(1);
            assert_eq!(reg.is_some(), kind.has_regularizer(), "{kind}");
            let population = Population::init(0..3, &device, |d| {
                LabModel::init(kind, InitScheme::Madsen, 100, 2, d)
            });
            let y = population.forward(Tensor::ones([3, 5, 100], &device));
            assert_eq!(y.dims(), [3, 5, 1], "{kind}");
        }
    }

    /// Every iNALU model redraws its weights on a restart (`restart_on_stall`), the unit alone
    /// as the stack: a model the match left out would keep its stalled weights.
    #[test]
    fn every_inalu_model_redraws_on_a_restart() {
        let device = Device::default();
        for kind in [ModelKind::Inalu, ModelKind::SingleInalu] {
            let model = LabModel::init(kind, InitScheme::Madsen, 4, 2, &device);
            let before = burn_nalu::internals::values(&model);
            let after = burn_nalu::internals::values(&model.reinitialize());
            let moved = before
                .iter()
                .zip(&after)
                .any(|(b, a)| !b.clone().equal(a.clone()).all().into_scalar::<bool>());
            assert!(moved, "{kind}: reinitialize kept every weight");
        }
    }

    #[test]
    fn model_names_round_trip() {
        for &kind in ModelKind::ALL {
            assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
        }
        let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            "mlp".parse::<ModelKind>().unwrap_err(),
            format!("unknown model 'mlp' (expected one of {})", names.join(", "))
        );
    }

    #[test]
    fn madsen_nac_range_gives_the_target_variance() {
        // fan·Var(W) = 2 with Var(W) = (1 − tanh r/r)(r − tanh(r/2))/(2r).
        for (d_in, d_out) in [(100, 2), (2, 1)] {
            let r = madsen_nac_range(d_in, d_out);
            let var = (1.0 - r.tanh() / r) * (r - (r / 2.0).tanh()) / (2.0 * r);
            let fan = (d_in + d_out).max(5) as f64;
            assert!((fan * var - 2.0).abs() < 1e-9, "{d_in}→{d_out}: r = {r}");
        }
        // A wider fan asks for a smaller variance, so a narrower range.
        assert!(madsen_nac_range(100, 2) < madsen_nac_range(2, 1));
    }
}
