//! Neural Power Units (NPU and RealNPU) of Heim, Pevný & Šmídl 2020, "Neural Power Units".
//!
//! Both units live in this file because they are one formula: RealNPU is the NPU without the
//! imaginary weights.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::{ArithmeticUnit, ops};

/// Configuration to create an [`Npu`] or a [`RealNpu`] ([`NpuConfig::init`],
/// [`NpuConfig::init_real`]).
#[derive(Config, Debug)]
pub struct NpuConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` added to `|x|` so that the logarithm stays finite at `x = 0`.
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

/// Real neural power unit: the [`Npu`] without `W_im`,
/// `z = exp(log r·W_re) ⊙ cos(k·W_re)` (same `r`, `k` and gate).
///
/// Should be created with [`NpuConfig::init_real`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct RealNpu {
    /// `W_re`, shape `[d_input, d_output]`.
    pub w_re: Param<Tensor<2>>,
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

    /// Initialises a new [`Npu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NpuConfig::validate`].
    pub fn init(&self, device: &Device) -> Npu {
        let real = self.init_real(device);
        Npu {
            w_re: real.w_re,
            w_im: Initializer::Zeros.init([self.d_input, self.d_output], device),
            gate: real.gate,
            epsilon: self.epsilon,
        }
    }

    /// Initialises a new [`RealNpu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NpuConfig::validate`].
    pub fn init_real(&self, device: &Device) -> RealNpu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let (d_in, d_out) = (self.d_input, self.d_output);
        RealNpu {
            w_re: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [d_in, d_out],
                Some(d_in),
                Some(d_out),
                device,
            ),
            gate: Initializer::Constant { value: 0.5 }.init([d_in], device),
            epsilon: self.epsilon,
        }
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
        self.regularizer_members(1)
    }

    fn regularizer_members(&self, members: usize) -> Tensor<1> {
        let w_re = ops::member_mean(ops::sparsity_to_signed_unit(self.w_re.val()), members);
        let w_im = ops::member_mean(self.w_im.val().abs(), members);
        w_re.add(w_im).add(gate_closure(self.gate.val(), members))
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

impl RealNpu {
    /// `z = exp(log r·W_re) ⊙ cos(k·W_re)`.
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

    /// `mean(min(|W_re|, |1 − |W_re||)) + mean(1 − ĝ)`: 0 when `W_re` is in {−1, 0, 1} and every
    /// gate is open (see [`Npu::regularizer`] for why gates are pulled open).
    pub fn regularizer(&self) -> Tensor<1> {
        self.regularizer_members(1)
    }

    fn regularizer_members(&self, members: usize) -> Tensor<1> {
        let w_re = ops::member_mean(ops::sparsity_to_signed_unit(self.w_re.val()), members);
        w_re.add(gate_closure(self.gate.val(), members))
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

/// `mean(1 − ĝ)` per member: how far, on average, the relevance gates are from open.
fn gate_closure(gate: Tensor<1>, members: usize) -> Tensor<1> {
    ops::member_mean(ops::one_minus(gate), members)
}

/// The NPU forward pass, `exp(log r·W_re − k·W_im) ⊙ cos(log r·W_im + k·W_re)`; RealNPU's is the
/// same with `W_im = 0`, written without its products.
fn npu_forward<const D: usize>(
    input: Tensor<D>,
    w_re: Tensor<2>,
    w_im: Option<Tensor<2>>,
    gate: Tensor<1>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    let (log_r, k) = ops::npu_polar(input, gate, epsilon, members);
    let mm = |a: Tensor<D>, w: Tensor<2>| ops::matmul_members(a, w, members);
    match w_im {
        Some(w_im) => {
            let magnitude = mm(log_r.clone(), w_re.clone()).sub(mm(k.clone(), w_im.clone()));
            let phase = mm(log_r, w_im).add(mm(k, w_re));
            magnitude.exp().mul(phase.cos())
        }
        None => mm(log_r, w_re.clone()).exp().mul(mm(k, w_re).cos()),
    }
}

/// `Npu` and `RealNpu` as arithmetic units; `$w_im` reads the imaginary weights, if any.
macro_rules! npu_unit {
    ($unit:ty, $name:literal, |$s:ident| $w_im:expr, |$u:ident| $snap:expr) => {
        impl ArithmeticUnit for $unit {
            const REGULARIZED: bool = true;

            fn forward_members<const D: usize>(
                &self,
                input: Tensor<D>,
                members: usize,
            ) -> Tensor<D> {
                ops::check_input($name, &input.dims(), self.d_input() / members, members);
                let $s = self;
                let (w_re, gate) = ($s.w_re.val(), $s.gate.val());
                npu_forward(input, w_re, $w_im, gate, $s.epsilon, members)
            }

            fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
                Some(self.regularizer_members(members))
            }

            fn clamp_weights(self) -> Self {
                self.clamp_weights()
            }

            /// Powers to multiples of ½ (roots allowed), gates to open or closed, and for the
            /// NPU the imaginary weights to 0.
            fn snap(self) -> Self {
                let $u = Self {
                    w_re: ops::snap_param(self.w_re, 2.0, None),
                    gate: ops::snap_param(self.gate, 1.0, Some((0.0, 1.0))),
                    ..self
                };
                $snap
            }
        }
    };
}

npu_unit!(Npu, "Npu", |s| Some(s.w_im.val()), |u| Npu {
    w_im: ops::snap_param(u.w_im, 1.0, Some((0.0, 0.0))),
    ..u
});
npu_unit!(RealNpu, "RealNpu", |_s| None, |u| u);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{GradientsParams, SgdConfig};

    const ROWS: [[f32; 2]; 4] = [[3.0, 4.0], [-2.0, 5.0], [-1.5, -8.0], [0.5, -0.25]];

    fn real(w: [[f32; 1]; 2], gate: [f32; 2], device: &Device) -> RealNpu {
        let mut layer = NpuConfig::new(2, 1).init_real(device);
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
    fn assert_rel(got: Tensor<2>, expected: impl Iterator<Item = f32>) {
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
    fn fractional_power_of_a_positive_input() {
        let device = Device::default();
        let x = Tensor::<2>::from_data([[9.0f32, -3.0], [0.25, 7.0]], &device);
        // W = [½, 0]: √x0, and x1 is left out.
        assert_rel(
            real([[0.5], [0.0]], [1.0, 1.0], &device).forward(x),
            [3.0f32, 0.5].into_iter(),
        );
    }

    #[test]
    fn closed_gate_drops_an_input_even_at_zero() {
        let device = Device::default();
        let x = Tensor::<2>::from_data([[0.0f32, 6.0], [-4.0, 2.5]], &device);
        // ĝ0 = 0: x0 is replaced by 1, so x0^1 · x1^1 = x1 (no log(0), no sign flip).
        assert_rel(
            real([[1.0], [1.0]], [0.0, 1.0], &device).forward(x),
            [6.0f32, 2.5].into_iter(),
        );
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
        let mut real = NpuConfig::new(3, 1).init_real(&device);
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
    fn clamping_after_an_optimizer_step_keeps_gates_in_range() {
        let device = Device::default().autodiff();
        let layer = real([[1.0], [1.0]], [0.9, 0.1], &device);
        let x = Tensor::<2>::from_floats([[3.0, 0.2]], &device);
        // dz/dĝ0 > 0 (|x0| > 1) and dz/dĝ1 < 0 (|x1| < 1): ascending z moves ĝ0 up, ĝ1 down.
        let loss = layer.forward(x).neg().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let stepped = SgdConfig::new().init().step(10.0, layer, grads);
        let g = stepped.gate.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(g[0] > 1.0 && g[1] < 0.0, "{g:?}");
        let clamped = stepped.clamp_weights();
        let g = clamped.gate.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, [1.0, 0.0]);
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
    #[should_panic(expected = "RealNpu: input must have d_input = 2 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        NpuConfig::new(2, 1)
            .init_real(&device)
            .forward(Tensor::<2>::zeros([1, 3], &device));
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
