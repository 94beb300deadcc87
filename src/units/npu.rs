//! The Neural Power Unit (NPU) of Heim, Pevný & Šmídl 2020, "Neural Power Units".
//!
//! Its real-valued variant, [`RealNpu`](crate::RealNpu), is the same formula without the
//! imaginary weights (`real_npu.rs`); both use the NPU math of `ops`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{Discretize, Expr, FormulaError, LayerSnap, SnapOptions, power_layer};
use crate::real_npu::RealNpuConfig;
use crate::unit::sized_display;
use crate::{ArithmeticUnit, ops};

/// Configuration to create an [`Npu`] using the [init function](NpuConfig::init).
#[derive(Config, Debug)]
pub struct NpuConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` added to `|x|` so that the logarithm stays finite at `x = 0`. Heim et al. add f32's
    /// machine epsilon (`f32::EPSILON as f64`, 1.19e-7); 1e-7 differs from it only near `x = 0`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
}

/// Neural power unit: products of inputs raised to learned real powers, negative inputs
/// included (their sign comes from the complex logarithm).
///
/// With the relevance gate `ĝ ∈ [0, 1]` (one per input), `r = ĝ⊙(|x| + ε) + (1 − ĝ)` and
/// `k = π·ĝ⊙[x < 0]`:
///
/// `z = exp(log r·W_re − k·W_im) ⊙ cos(log r·W_im + k·W_re)`
///
/// An input with `ĝ = 0` contributes the factor 1 whatever its value. `ĝ` is clamped to [0, 1]
/// after each step ([`Npu::clamp_weights`]). `W_re` starts Xavier-uniform, `W_im` at 0, `ĝ` at ½.
///
/// Should be created with [`NpuConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Npu {
    /// `W_re`, shape `[d_input, d_output]`.
    pub w_re: Param<Tensor<2>>,
    /// `W_im`, shape `[d_input, d_output]`.
    pub w_im: Param<Tensor<2>>,
    /// `ĝ`, shape `[d_input]`.
    pub gate: Param<Tensor<1>>,
    epsilon: f64,
}

impl NpuConfig {
    /// Checks the config: sizes at least 1, `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NpuConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NpuConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("NpuConfig", "epsilon", self.epsilon)
    }

    /// Initialises a new [`Npu`] on `device`: `W_re` as a [`RealNpu`](crate::RealNpu)'s, `W_im` at 0.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NpuConfig::validate`].
    pub fn init(&self, device: &Device) -> Npu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let real = self.real().init(device);
        Npu {
            w_re: real.w_re,
            w_im: Initializer::Zeros.init([self.d_input, self.d_output], device),
            gate: real.gate,
            epsilon: self.epsilon,
        }
    }

    /// The [`RealNpuConfig`] of the same sizes and `ε`.
    fn real(&self) -> RealNpuConfig {
        RealNpuConfig::new(self.d_input, self.d_output).with_epsilon(self.epsilon)
    }
}

impl Npu {
    /// `z = exp(log r·W_re − k·W_im) ⊙ cos(log r·W_im + k·W_re)`.
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the layer and both sizes.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// `mean(min(|W_re|, |1 − |W_re||)) + mean(|W_im|) + mean(1 − ĝ)`: 0 when `W_re` is in
    /// {−1, 0, 1}, `W_im` is 0 and every gate is open.
    ///
    /// Gates are pulled open, not towards 0 or 1: an input drops out of the product through
    /// `W_re = 0` (factor `r⁰ = 1`), which the first term favours, so a gate has nothing to
    /// decide in a discrete solution. Left free, gates close on inputs the unit still needs
    /// (ĝ ≈ 0.01 in RealNPU runs on `a / b`), and a closed gate turns `a^w` into a
    /// linearisation around 1 that fits the training range and nothing else. Fractional powers
    /// (`W_re = ½` for a square root) are penalised: train those with a small or zero weight on
    /// this term.
    pub fn regularizer(&self) -> Tensor<1> {
        self.sparsity(1)
    }

    /// The regulariser of each of `members` stacked copies.
    fn sparsity(&self, members: usize) -> Tensor<1> {
        let w_re = ops::member_mean(ops::sparsity_to_signed_unit(self.w_re.val()), members);
        let w_im = ops::member_mean(self.w_im.val().abs(), members);
        w_re.add(w_im)
            .add(ops::gate_closure(self.gate.val(), members))
    }

    /// Clamps the gate `ĝ` to [0, 1]; call after every optimizer step.
    pub fn clamp_weights(self) -> Self {
        Self {
            gate: ops::clamp_param(self.gate, 0.0, 1.0),
            ..self
        }
    }

    /// `ε` added to `|x|`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.w_re.lazy_shape()[0]
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.w_re.lazy_shape()[1]
    }
}

impl ArithmeticUnit for Npu {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Npu", &input.dims(), self.d_input() / members, members);
        let (w_re, w_im, gate) = (self.w_re.val(), self.w_im.val(), self.gate.val());
        ops::npu_power(input, w_re, Some(w_im), gate, self.epsilon, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        Some(self.sparsity(members))
    }

    fn clamp_members(self) -> Self {
        self.clamp_weights()
    }

    /// Powers to multiples of ½ (roots allowed), gates to open or closed, the imaginary
    /// weights to 0.
    fn snap(self) -> Self {
        Self {
            w_re: ops::snap_param(self.w_re, 2.0, None),
            w_im: ops::snap_param(self.w_im, 1.0, Some((0.0, 0.0))),
            gate: ops::snap_param(self.gate, 1.0, Some((0.0, 1.0))),
            ..self
        }
    }
}

impl Discretize for Npu {
    /// `Π_i x_i^{W_ij}` over the inputs whose gate is open, each power a multiple of ½
    /// ([`power_layer`]).
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let (w_re, w_im, gate) = (self.w_re.val(), Some(self.w_im.val()), self.gate.val());
        Ok(power_layer(w_re, w_im, gate, inputs, options))
    }

    /// `(c·x)^p = c^p·x^p`, and the gates and the sign term `k` do not see `c > 0`.
    fn scale_free(&self) -> bool {
        true
    }
}

sized_display!(Npu);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::real_npu::RealNpu;

    const ROWS: [[f32; 2]; 4] = [[3.0, 4.0], [-2.0, 5.0], [-1.5, -8.0], [0.5, -0.25]];

    pub(crate) fn real(w: [[f32; 1]; 2], gate: [f32; 2], device: &Device) -> RealNpu {
        let mut layer = RealNpuConfig::new(2, 1).init(device);
        layer.w_re = Param::from_data(w, device);
        layer.gate = Param::from_data(gate, device);
        layer
    }

    fn complex(w: [[f32; 1]; 2], gate: [f32; 2], device: &Device) -> Npu {
        let mut layer = NpuConfig::new(2, 1).init(device);
        layer.w_re = Param::from_data(w, device);
        layer.gate = Param::from_data(gate, device);
        layer
    }

    /// Within 1e-4 relative: `exp(log r·W)` rounds logs of inputs below 10 and their sum by a
    /// few ulp, about 1e-6 in the exponent and hence relatively in the result.
    pub(crate) fn assert_rel(got: Tensor<2>, expected: impl Iterator<Item = f32>) {
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!(((g - e) / e).abs() < 1e-4, "got {g}, expected {e}");
        }
    }

    #[test]
    fn integer_powers_keep_the_sign_of_negative_inputs() {
        let device = Device::default();
        let x = || Tensor::<2>::from_data(ROWS, &device);
        type Case = ([[f32; 1]; 2], fn([f32; 2]) -> f32);
        let cases: [Case; 4] = [
            ([[1.0], [1.0]], |r| r[0] * r[1]),
            ([[1.0], [-1.0]], |r| r[0] / r[1]),
            ([[2.0], [0.0]], |r| r[0] * r[0]),
            ([[1.0], [0.0]], |r| r[0]),
        ];
        for (w, op) in cases {
            assert_rel(
                real(w, [1.0, 1.0], &device).forward(x()),
                ROWS.iter().map(|&r| op(r)),
            );
            assert_rel(
                complex(w, [1.0, 1.0], &device).forward(x()),
                ROWS.iter().map(|&r| op(r)),
            );
        }
    }

    #[test]
    fn regularizers_are_zero_at_discrete_solutions_and_positive_between() {
        let device = Device::default();
        let reg = |r: Tensor<1>| r.into_scalar::<f32>();
        assert_eq!(
            reg(real([[1.0], [-1.0]], [1.0, 1.0], &device).regularizer()),
            0.0
        );
        assert_eq!(
            reg(complex([[1.0], [0.0]], [1.0, 1.0], &device).regularizer()),
            0.0
        );
        // W_re = [0.5, 1.5]: distances 0.5 and 0.5 → 0.5; gates [1, 0.6]: mean(1 − ĝ) = 0.2.
        let between = reg(real([[0.5], [1.5]], [1.0, 0.6], &device).regularizer());
        // Means of two values, summed: a few roundings of numbers below 1 (< 1e-6).
        assert!((between - 0.7).abs() < 1e-6, "{between}");
        // W_im = [0.2, −0.4] adds mean(|W_im|) = 0.3.
        let mut npu = complex([[1.0], [0.0]], [1.0, 1.0], &device);
        npu.w_im = Param::from_data([[0.2f32], [-0.4]], &device);
        let r = reg(npu.regularizer());
        assert!((r - 0.3).abs() < 1e-6, "{r}");
    }

    /// Both units' regularisers pull every gate open, wherever it stands in (0, 1): the term
    /// is `mean(1 − ĝ)`, whose gradient is `−1/n` per gate (see [`Npu::regularizer`] for why).
    #[test]
    fn both_regularizers_pull_every_gate_open() {
        let device = Device::default().autodiff();
        let gates = [0.05f32, 0.5, 0.95];
        let mut npu = NpuConfig::new(3, 1).init(&device);
        npu.gate = Param::from_data(gates, &device);
        let mut real = RealNpuConfig::new(3, 1).init(&device);
        real.gate = Param::from_data(gates, &device);
        let grad_of = |reg: Tensor<1>, gate: &Param<Tensor<1>>| {
            let grads = reg.backward();
            let g = gate.grad(&grads).unwrap();
            g.into_data().try_to_vec::<f32>().unwrap()
        };
        let want = [-1.0f32 / 3.0; 3];
        assert_eq!(grad_of(npu.regularizer(), &npu.gate), want);
        assert_eq!(grad_of(real.regularizer(), &real.gate), want);
    }

    #[test]
    fn init_matches_the_paper() {
        let device = Device::default();
        let npu = NpuConfig::new(4, 3).init(&device);
        assert_eq!(
            npu.gate.val().into_data().try_to_vec::<f32>().unwrap(),
            [0.5; 4]
        );
        assert_eq!(npu.w_im.val().abs().sum().into_scalar::<f32>(), 0.0);
        let bound = (6.0f32 / 7.0).sqrt();
        npu.w_re.to_data().assert_within_range(-bound..bound);
    }

    #[test]
    fn snap_rounds_powers_to_halves_and_gates_shut_or_open() {
        let device = Device::default();
        let trained = complex([[0.52], [-0.9]], [0.9, 0.3], &device);
        let trained = Npu {
            w_im: Param::from_data([[0.2], [-0.1]], &device),
            ..trained
        };
        let snapped = trained.snap();
        let values = |p: &Param<Tensor<2>>| p.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(values(&snapped.w_re), [0.5, -1.0]);
        assert_eq!(values(&snapped.w_im), [0.0, 0.0]);
        let gate = snapped.gate.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(gate, [1.0, 0.0]);
    }
}
