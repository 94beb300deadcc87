//! The Hill Space unit of DuJardin 2025, "Hill Space is All You Need": the NAC's weight
//! constraint `W = tanh(Ŵ) ⊙ σ(M̂)` with saturated values snapped to exact ones, under an
//! additive or an exponential primitive chosen by the caller.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, Levels, SnapOptions, SnappedWeights,
};
use crate::unit::sized_display;
use crate::{ArithmeticUnit, ops};

/// What a [`Hill`] unit computes from its weights.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum HillPrimitive {
    /// `y = x·W`: sums and differences (`[1, 1]` is `a + b`, `[1, −1]` is `a − b`).
    Additive,
    /// `y = Π_i x_i^{W_i}` with the sign of negative inputs kept: products and quotients
    /// (`[1, 1]` is `a·b`, `[1, −1]` is `a / b`).
    Exponential,
}

/// Configuration to create a [`Hill`] layer using the [init function](HillConfig::init).
#[derive(Config, Debug)]
pub struct HillConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// The operation the weights select from: sums or products.
    #[config(default = "HillPrimitive::Additive")]
    pub primitive: HillPrimitive,
    /// `τ`: `tanh(Ŵ)` within `τ` of ±1 becomes ±1 exactly, `σ(M̂)` within `τ` of 0 or 1 becomes
    /// 0 or 1 (DuJardin's `precision_threshold`, 1e-6). A snapped element passes no gradient.
    #[config(default = 1e-6)]
    pub snap_threshold: f64,
    /// `ε` in `log(|x| + ε)` of the exponential primitive, which keeps it finite at `x = 0`.
    /// DuJardin computes `x^W` as a complex power, with no guard (no input of his tasks is 0).
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// How `Ŵ` and `M̂` are initialised. DuJardin's are zero (`W = 0`; `M̂` moves once `Ŵ` has),
    /// so that every seed starts from the same weights and only the data differ.
    #[config(default = "Initializer::Zeros")]
    pub initializer: Initializer,
}

/// Hill Space unit: the NAC's weights snapped where they saturate, so that a trained weight
/// is exactly −1, 0 or 1, under one fixed primitive.
///
/// `W = snap(tanh(Ŵ)) ⊙ snap(σ(M̂))`, where `snap` sets `tanh` within `τ` of ±1 to ±1 and `σ`
/// within `τ` of 0 or 1 to 0 or 1 ([`HillConfig::snap_threshold`]); then
///
/// - [`Additive`](HillPrimitive::Additive): `y = x·W`;
/// - [`Exponential`](HillPrimitive::Exponential): `y = exp(log(|x| + ε)·W) ⊙ cos(π·[x < 0]·W)`,
///   the real part of `Π_i x_i^{W_i}` taken as a complex power.
///
/// No regulariser and no clamp: the constraint is in `W`'s form, and saturation ends training
/// of a weight (a snapped element has no gradient). DuJardin trains it with a learning rate
/// of 0.1. On inputs that are all negative the exponential primitive's sign term is
/// `cos(π·Σ_i W_i)`, which is 0 halfway from `W = 0` to a product (`Σ W = 2`): from zero
/// weights it does not learn products there (quotients, `Σ W = 0`, keep it at 1).
///
/// Should be created with [`HillConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Hill {
    /// `Ŵ`, shape `[d_input, d_output]`.
    pub w_hat: Param<Tensor<2>>,
    /// `M̂`, shape `[d_input, d_output]`.
    pub m_hat: Param<Tensor<2>>,
    snap_threshold: f64,
    epsilon: f64,
    #[module(skip)]
    primitive: HillPrimitive,
}

impl HillConfig {
    /// Checks the config: sizes at least 1, `epsilon` finite and positive, `snap_threshold` in
    /// (0, ½) (a larger one would snap every weight).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("HillConfig", "d_input", self.d_input)?;
        ConfigError::check_size("HillConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("HillConfig", "epsilon", self.epsilon)?;
        ConfigError::check_positive("HillConfig", "snap_threshold", self.snap_threshold)?;
        if self.snap_threshold >= 0.5 {
            let reason = format!("must be less than 0.5, got {}", self.snap_threshold);
            return Err(ConfigError::new("HillConfig", "snap_threshold", reason));
        }
        Ok(())
    }

    /// Initialises a new [`Hill`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`HillConfig::validate`].
    pub fn init(&self, device: &Device) -> Hill {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let matrix =
            || crate::nac::init_matrix(&self.initializer, self.d_input, self.d_output, device);
        Hill {
            w_hat: matrix(),
            m_hat: matrix(),
            snap_threshold: self.snap_threshold,
            epsilon: self.epsilon,
            primitive: self.primitive,
        }
    }
}

impl Hill {
    /// `y = x·W` or `y = exp(log(|x| + ε)·W) ⊙ cos(π·[x < 0]·W)` over the last axis.
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

    /// The effective weight `W = snap(tanh(Ŵ)) ⊙ snap(σ(M̂))`, shape `[d_input, d_output]`.
    pub fn weight(&self) -> Tensor<2> {
        let tau = self.snap_threshold;
        let t = self.w_hat.val().tanh();
        let t = t
            .clone()
            .mask_fill(t.clone().greater_elem(1.0 - tau), 1.0)
            .mask_fill(t.lower_elem(tau - 1.0), -1.0);
        let s = ops::sigmoid(self.m_hat.val());
        let s = s
            .clone()
            .mask_fill(s.clone().greater_elem(1.0 - tau), 1.0)
            .mask_fill(s.lower_elem(tau), 0.0);
        t.mul(s)
    }

    /// The primitive the weights select from.
    pub fn primitive(&self) -> HillPrimitive {
        self.primitive
    }

    /// `τ` of the snapping activations.
    pub fn snap_threshold(&self) -> f64 {
        self.snap_threshold
    }

    /// `ε` in `log(|x| + ε)`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.w_hat.lazy_shape()[0]
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.w_hat.lazy_shape()[1]
    }
}

impl ArithmeticUnit for Hill {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Hill", &input.dims(), self.d_input() / members, members);
        let weight = self.weight();
        match self.primitive {
            HillPrimitive::Additive => ops::matmul_members(input, weight, members),
            HillPrimitive::Exponential => {
                let sign = ops::sign_factor(&input, weight.clone(), members);
                ops::log_space_matmul(input, weight, self.epsilon, members).mul(sign)
            }
        }
    }

    fn snap(self) -> Self {
        let (w_hat, m_hat) = ops::snap_nac(self.w_hat, self.m_hat, 1.0, 1.0);
        Self {
            w_hat,
            m_hat,
            ..self
        }
    }
}

impl Discretize for Hill {
    /// `Σ_i W_ij·x_i` or `Π_i x_i^{W_ij}` with `W` snapped to {−1, 0, 1}.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight(), Levels::SignedUnit, options);
        let outputs = match self.primitive {
            HillPrimitive::Additive => w.sums(inputs),
            HillPrimitive::Exponential => w.products(inputs, false),
        };
        Ok(w.into_layer(outputs))
    }

    fn linear_map(&self) -> Option<Tensor<2>> {
        (self.primitive == HillPrimitive::Additive).then(|| self.weight())
    }
}

sized_display!(Hill);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// A unit whose `W` is `pattern` exactly: `tanh(±20)` and `σ(20)` are within 1e-6 of ±1
    /// and 1 and snap to them, `σ(−20)` (2e-9) to 0.
    fn hill(primitive: HillPrimitive, pattern: [[f32; 2]; 2], device: &Device) -> Hill {
        let mut layer = HillConfig::new(2, 2).with_primitive(primitive).init(device);
        layer.w_hat = Param::from_data(pattern.map(|r| r.map(|w| 20.0 * w)), device);
        layer.m_hat = Param::from_data(
            pattern.map(|r| r.map(|w| if w == 0.0 { -20.0 } else { 20.0 })),
            device,
        );
        layer
    }

    fn values(y: Tensor<2>) -> Vec<f32> {
        y.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn saturated_weights_are_exact() {
        let device = Device::default();
        let w = hill(HillPrimitive::Additive, [[1.0, 0.0], [-1.0, 1.0]], &device).weight();
        assert_eq!(
            w.into_data(),
            TensorData::from([[1.0f32, 0.0], [-1.0, 1.0]])
        );
        // Unsaturated values pass unchanged: tanh(0.5)·σ(0).
        let mut layer = HillConfig::new(1, 1).init(&device);
        layer.w_hat = Param::from_data([[0.5f32]], &device);
        let got = values(layer.weight().unsqueeze::<2>())[0];
        assert!((got - 0.5f32.tanh() * 0.5).abs() < 1e-7, "{got}");
    }

    #[test]
    fn additive_weights_add_and_subtract_to_the_bit() {
        let device = Device::default();
        // y0 = a − b, y1 = b.
        let layer = hill(HillPrimitive::Additive, [[1.0, 0.0], [-1.0, 1.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, 5.0], [-2.5, 100.0]], &device);
        assert_eq!(values(layer.forward(x)), [-2.0, 5.0, -102.5, 100.0]);
    }

    #[test]
    fn exponential_weights_multiply_and_divide_with_signs() {
        let device = Device::default();
        // y0 = a / b, y1 = a·b.
        let layer = hill(
            HillPrimitive::Exponential,
            [[1.0, 1.0], [-1.0, 1.0]],
            &device,
        );
        let x = Tensor::<2>::from_floats([[3.0, -4.0], [-2.5, -0.5], [6.0, 0.25]], &device);
        let want = [-0.75, -12.0, 5.0, 1.25, 24.0, 1.5];
        for (got, want) in values(layer.forward(x)).iter().zip(want) {
            // exp of a sum of two logs (|log| < 3) and a cosine of a multiple of π: a few ulp
            // each; ε = 1e-7 moves an input of 0.25 by 4e-7 relative.
            assert!(((got - want) / want).abs() < 2e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn a_snapped_weight_passes_no_gradient() {
        let device = burn::tensor::Device::default().autodiff();
        let mut layer = HillConfig::new(2, 1).init(&device);
        layer.w_hat = Param::from_data([[20.0f32], [0.3]], &device);
        layer.m_hat = Param::from_data([[20.0f32], [0.7]], &device);
        let x = Tensor::<2>::from_floats([[1.5, 2.0]], &device);
        let grads = layer.forward(x).sum().backward();
        let g = values(layer.w_hat.grad(&grads).unwrap().unsqueeze::<2>());
        assert_eq!(g[0], 0.0, "the saturated element");
        // dy/dŴ = x·(1 − tanh²(Ŵ))·σ(M̂) for the free one.
        let want = 2.0 * (1.0 - 0.3f32.tanh().powi(2)) / (1.0 + (-0.7f32).exp());
        assert!((g[1] - want).abs() < 1e-6 * want, "{} vs {want}", g[1]);
    }

    #[test]
    fn snap_and_formula_read_back_the_operation() {
        let device = Device::default();
        let mut layer = HillConfig::new(2, 1)
            .with_primitive(HillPrimitive::Exponential)
            .init(&device);
        layer.w_hat = Param::from_data([[3.0f32], [-2.5]], &device);
        layer.m_hat = Param::from_data([[4.0f32], [5.0]], &device);
        let snapped = layer.snap();
        let w = snapped.weight().into_data();
        assert_eq!(w, TensorData::from([[1.0f32], [-1.0]]));
        let x = Tensor::zeros([1, 2], &device);
        let f = crate::formula::extract(&[&snapped], x, &SnapOptions::default()).unwrap();
        assert_eq!(f.render(&crate::formula::Naming::new()), "x0 / x1");
    }

    #[test]
    fn invalid_configs_are_refused() {
        let err = |c: HillConfig| c.validate().unwrap_err().to_string();
        assert_eq!(
            err(HillConfig::new(2, 1).with_snap_threshold(0.5)),
            "HillConfig.snap_threshold must be less than 0.5, got 0.5"
        );
        assert_eq!(
            err(HillConfig::new(0, 1)),
            "HillConfig.d_input must be at least 1, got 0"
        );
    }

    #[test]
    #[should_panic(expected = "Hill: input must have d_input = 2 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        HillConfig::new(2, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 3], &device));
    }
}
