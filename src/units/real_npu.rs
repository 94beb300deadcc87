//! The real Neural Power Unit (RealNPU) of Heim, Pevný & Šmídl 2020, "Neural Power Units": the
//! [`Npu`](crate::Npu) without its imaginary weights.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{Discretize, Expr, FormulaError, LayerSnap, SnapOptions, power_layer};
use crate::unit::sized_display;
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`RealNpu`] layer using the [init function](RealNpuConfig::init).
#[derive(Config, Debug)]
pub struct RealNpuConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` added to `|x|` so that the logarithm stays finite at `x = 0`. Heim et al. add f32's
    /// machine epsilon (`f32::EPSILON as f64`, 1.19e-7); 1e-7 differs from it only near `x = 0`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// How `W_re` is initialised: Xavier-uniform (gain 1), as Heim et al.
    #[config(default = "Initializer::XavierUniform { gain: 1.0 }")]
    pub initializer: Initializer,
    /// Also clamp `W_re` to [−1, 1] after every step (Mistry et al.'s modification).
    #[config(default = false)]
    pub clamp_powers: bool,
    /// Which sparsity regulariser [`RealNpu::regularizer`] computes.
    #[config(default = "RealNpuRegularizer::OpenGates")]
    pub regularizer: RealNpuRegularizer,
    /// Learn the relevance gates `ĝ` (from ½); `false` holds every gate open at 1, untrained
    /// ([`RealNpuConfig::naive`]).
    #[config(default = true)]
    pub learn_gates: bool,
}

/// The sparsity regulariser of a [`RealNpu`].
#[derive(Config, Debug, PartialEq)]
pub enum RealNpuRegularizer {
    /// `mean(min(|W_re|, |1 − |W_re||)) + mean(1 − ĝ)`: powers to −1, 0 or 1, every gate pulled
    /// open (this crate's, see [`Npu::regularizer`](crate::Npu::regularizer)).
    OpenGates,
    /// `mean(|1 − |W_re||) + mean(min(ĝ, 1 − ĝ))`: powers to ±1, gates to 0 or 1 (Mistry et
    /// al.'s modified RealNPU, arXiv 2110.05177).
    DecidedGates,
}

impl RealNpuConfig {
    /// Heim et al.'s naive NPU in its real form: every relevance gate held open
    /// ([`learn_gates`](Self::learn_gates) off), `z = exp(log(|x| + ε)·W_re) ⊙ cos(k·W_re)`.
    /// On sums of many inputs near one value, a learned gate lets `(1 − ĝ) + ĝ·c·|a − b|`
    /// stand in for `a / b` (both are `1 + (a − b)/b` to first order); with the gates open, a
    /// difference under a power has no such look-alike.
    pub fn naive(d_input: usize, d_output: usize) -> Self {
        Self::new(d_input, d_output).with_learn_gates(false)
    }

    /// Mistry, Farrahi & Hare's modified RealNPU: `W_re` initialised as the NAU's (uniform in
    /// ±`min(0.5, √3·√(2 / (d_input + d_output)))`) and clamped to [−1, 1], the
    /// [`DecidedGates`](RealNpuRegularizer::DecidedGates) regulariser.
    pub fn mistry(d_input: usize, d_output: usize) -> Self {
        let fan = (d_input + d_output) as f64;
        let r = f64::min(0.5, 3f64.sqrt() * (2.0 / fan).sqrt());
        Self::new(d_input, d_output)
            .with_initializer(Initializer::Uniform { min: -r, max: r })
            .with_clamp_powers(true)
            .with_regularizer(RealNpuRegularizer::DecidedGates)
    }
}

/// Real neural power unit: products of inputs raised to learned real powers, the sign of a
/// negative input kept through `cos(π·W)`.
///
/// With the relevance gate `ĝ ∈ [0, 1]` (one per input), `r = ĝ⊙(|x| + ε) + (1 − ĝ)` and
/// `k = π·ĝ⊙[x < 0]`:
///
/// `z = exp(log r·W_re) ⊙ cos(k·W_re)`
///
/// the [`Npu`](crate::Npu) with `W_im = 0`. An input with `ĝ = 0` contributes the factor 1
/// whatever its value. `ĝ` is clamped to [0, 1] after each step ([`RealNpu::clamp_weights`]),
/// and `W_re` to [−1, 1] with [`RealNpuConfig::clamp_powers`]. `W_re` starts Xavier-uniform
/// ([`RealNpuConfig::initializer`]), `ĝ` at ½.
///
/// Should be created with [`RealNpuConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct RealNpu {
    /// `W_re`, shape `[d_input, d_output]`.
    pub w_re: Param<Tensor<2>>,
    /// `ĝ`, shape `[d_input]`.
    pub gate: Param<Tensor<1>>,
    epsilon: f64,
    clamp_powers: bool,
    #[module(skip)]
    regularizer: RealNpuRegularizer,
}

impl RealNpuConfig {
    /// Checks the config: sizes at least 1, `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("RealNpuConfig", "d_input", self.d_input)?;
        ConfigError::check_size("RealNpuConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("RealNpuConfig", "epsilon", self.epsilon)
    }

    /// Initialises a new [`RealNpu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`RealNpuConfig::validate`].
    pub fn init(&self, device: &Device) -> RealNpu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let (d_in, d_out) = (self.d_input, self.d_output);
        RealNpu {
            w_re: crate::nac::init_matrix(&self.initializer, d_in, d_out, device),
            gate: match self.learn_gates {
                true => Initializer::Constant { value: 0.5 }.init([d_in], device),
                false => Initializer::Constant { value: 1.0 }
                    .init([d_in], device)
                    .set_require_grad(false),
            },
            epsilon: self.epsilon,
            clamp_powers: self.clamp_powers,
            regularizer: self.regularizer.clone(),
        }
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

    /// The sparsity regulariser of [`RealNpuConfig::regularizer`]: by default
    /// `mean(min(|W_re|, |1 − |W_re||)) + mean(1 − ĝ)`, 0 when `W_re` is in {−1, 0, 1} and every
    /// gate is open (see [`Npu::regularizer`](crate::Npu::regularizer) for why gates are pulled
    /// open); [`RealNpuRegularizer::DecidedGates`] is 0 when `W_re` is ±1 and every gate 0 or 1.
    pub fn regularizer(&self) -> Tensor<1> {
        self.sparsity(1)
    }

    /// The regulariser of each of `members` stacked copies.
    fn sparsity(&self, members: usize) -> Tensor<1> {
        let (w_re, gate) = (self.w_re.val(), self.gate.val());
        match self.regularizer {
            RealNpuRegularizer::OpenGates => {
                let powers = ops::member_mean(ops::sparsity_to_signed_unit(w_re), members);
                powers.add(ops::gate_closure(gate, members))
            }
            RealNpuRegularizer::DecidedGates => {
                let powers = ops::member_mean(ops::one_minus(w_re.abs()).abs(), members);
                let gates =
                    ops::member_mean(ops::sparsity_to_unit(gate).unsqueeze_dim::<2>(1), members);
                powers.add(gates)
            }
        }
    }

    /// Clamps the gate `ĝ` to [0, 1] (and `W_re` to [−1, 1] with
    /// [`RealNpuConfig::clamp_powers`]); call after every optimizer step.
    pub fn clamp_weights(self) -> Self {
        let w_re = match self.clamp_powers {
            true => ops::clamp_param(self.w_re, -1.0, 1.0),
            false => self.w_re,
        };
        Self {
            w_re,
            gate: ops::clamp_param(self.gate, 0.0, 1.0),
            ..self
        }
    }

    /// `ε` added to `|x|`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Whether `W_re` is clamped, where the trainer's host step can run the layer (the
    /// [`OpenGates`](RealNpuRegularizer::OpenGates) regulariser, learned gates); `None` where it
    /// cannot.
    #[cfg(feature = "flex")]
    #[doc(hidden)]
    pub fn host_clamp_powers(&self) -> Option<bool> {
        let plain = self.regularizer == RealNpuRegularizer::OpenGates;
        (plain && self.gate.is_require_grad()).then_some(self.clamp_powers)
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

impl ArithmeticUnit for RealNpu {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("RealNpu", &input.dims(), self.d_input() / members, members);
        let (w_re, gate) = (self.w_re.val(), self.gate.val());
        ops::npu_power(input, w_re, None, gate, self.epsilon, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        Some(self.sparsity(members))
    }

    fn clamp_members(self) -> Self {
        self.clamp_weights()
    }

    /// Powers to multiples of ½ (roots allowed), gates to open or closed.
    fn snap(self) -> Self {
        Self {
            w_re: ops::snap_param(self.w_re, 2.0, None),
            gate: ops::snap_param(self.gate, 1.0, Some((0.0, 1.0))),
            ..self
        }
    }
}

impl Discretize for RealNpu {
    /// `Π_i x_i^{W_ij}` over the inputs whose gate is open, each power a multiple of ½
    /// ([`power_layer`]).
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let (w_re, w_im, gate) = (self.w_re.val(), None, self.gate.val());
        Ok(power_layer(w_re, w_im, gate, inputs, options))
    }

    /// `(c·x)^p = c^p·x^p`, and the gates and the sign term `k` do not see `c > 0`.
    fn scale_free(&self) -> bool {
        true
    }

    /// Each shifted input's gate opened: `ĝ·(|x + e| + ε) + 1 − ĝ = ĝ·(x + ε) + r` for positive
    /// `x + e`, with `r = ĝ·e + 1 − ĝ`; where `|r|` is within `max_distance·ĝ` (as a weight
    /// within `max_distance` of its snap) the input is `ĝ·x`, the open gate's `x` times `ĝ`.
    fn absorb_offset(&self, offset: &[f64], options: &SnapOptions) -> Option<Self> {
        let gates = self.gate.val().into_data().convert::<f64>();
        let mut gates = gates.try_to_vec::<f64>().expect("f64 after convert");
        for (g, &e) in gates.iter_mut().zip(offset).filter(|(_, e)| **e != 0.0) {
            let rest = *g * e + 1.0 - *g;
            if *g <= options.gate_tolerance || rest.abs() > options.max_distance * *g {
                return None;
            }
            *g = 1.0;
        }
        let gate = ops::replace_value(self.gate.clone(), |t| {
            let open: Vec<f32> = gates.iter().map(|&g| g as f32).collect();
            Tensor::<1>::from_floats(open.as_slice(), &t.device()).cast(t.dtype())
        });
        Some(Self {
            gate,
            ..self.clone()
        })
    }
}

sized_display!(RealNpu);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npu::tests::{assert_rel, real};
    use burn::optim::{GradientsParams, SgdConfig};

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

    /// The naive NPU's gates start open and no optimizer step moves them: they have no
    /// gradient, in a single layer and stacked in a population.
    #[test]
    fn naive_gates_stay_open_through_an_optimizer_step() {
        let device = Device::default().autodiff();
        let layer = RealNpuConfig::naive(2, 1).init(&device);
        let population =
            crate::Population::init(0..2, &device, |d| RealNpuConfig::naive(2, 1).init(d));
        let x = Tensor::<2>::from_floats([[3.0, 0.2]], &device);
        let loss = layer.forward(x.clone()).neg().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let stepped = SgdConfig::new().init().step(10.0, layer, grads);
        let g = stepped.gate.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, [1.0, 1.0]);
        let loss = population
            .forward(x.unsqueeze::<3>().repeat_dim(0, 2))
            .neg()
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &population);
        let stepped = SgdConfig::new().init().step(10.0, population, grads);
        let g = stepped
            .unit
            .gate
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(g, [1.0; 4]);
    }

    #[test]
    #[should_panic(expected = "RealNpu: input must have d_input = 2 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        RealNpuConfig::new(2, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 3], &device));
    }
}
