//! The stochastic NMU (sNMU) of Mistry, Farrahi & Hare 2022, "Improving the Robustness of Neural
//! Multiplication Units with Reversible Stochasticity" (arXiv 2211.05624).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Distribution, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, Levels, SnapOptions, SnappedWeights,
};
use crate::unit::sized_display;
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`Snmu`] layer using the [init function](SnmuConfig::init).
#[derive(Config, Debug)]
pub struct SnmuConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// The noise's lower bound (the authors' 1).
    #[config(default = 1.0)]
    pub noise_low: f64,
    /// The noise's upper bound (the authors' 5).
    #[config(default = 5.0)]
    pub noise_high: f64,
}

/// Stochastic neural multiplication unit: an [`Nmu`](crate::Nmu) that, while training, multiplies
/// its inputs by noise and divides the noise back out of the product.
///
/// Training: `z_j = NMU(x ⊙ n)_j / NMU(n)_j` with `n ~ U[noise_low, noise_high)` drawn afresh for
/// every input element at every step; evaluation: the plain NMU,
/// `z_j = Π_i (W_ij·x_i + 1 − W_ij)`. At discrete weights the noise cancels exactly, so the
/// noise only perturbs weights between 0 and 1: a nudge out of the NMU's saddles. `W` is
/// clamped to [0, 1] after every step ([`Snmu::clamp_weights`]); regulariser and initialisation
/// are the NMU's. The layer is in training when its weights track gradients (an autodiff
/// device). The noise comes from the device's random generator (seed the device for
/// reproducible runs); the experiments' trainer draws each run's noise at each step from a
/// generator of the run's seed and the step, so that a run in a
/// [`Population`](crate::Population) draws the noise it would alone.
///
/// Should be created with [`SnmuConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Snmu {
    /// `W`, shape `[d_input, d_output]`.
    pub weight: Param<Tensor<2>>,
    noise_low: f64,
    noise_high: f64,
}

impl SnmuConfig {
    /// Checks the config: sizes at least 1, `0 < noise_low < noise_high`, both finite.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("SnmuConfig", "d_input", self.d_input)?;
        ConfigError::check_size("SnmuConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("SnmuConfig", "noise_low", self.noise_low)?;
        if !(self.noise_high.is_finite() && self.noise_high > self.noise_low) {
            let reason = format!(
                "must be finite and above noise_low ({}), got {}",
                self.noise_low, self.noise_high
            );
            return Err(ConfigError::new("SnmuConfig", "noise_high", reason));
        }
        Ok(())
    }

    /// Initialises a new [`Snmu`] on `device`: `W` uniform in [0.25, 0.75], as the NMU.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`SnmuConfig::validate`].
    pub fn init(&self, device: &Device) -> Snmu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let init = Initializer::Uniform {
            min: 0.25,
            max: 0.75,
        };
        Snmu {
            weight: ops::init::param(&init, [self.d_input, self.d_output], None, None, device),
            noise_low: self.noise_low,
            noise_high: self.noise_high,
        }
    }
}

impl Snmu {
    /// Training: `z_j = NMU(x ⊙ n)_j / NMU(n)_j`, `n ~ U[noise_low, noise_high)`; evaluation:
    /// `z_j = Π_i (W_ij·x_i + 1 − W_ij)`; over the last axis.
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

    /// The sparsity regulariser `mean(min(W, 1 − W))`: 0 when every weight is 0 or 1.
    pub fn regularizer(&self) -> Tensor<1> {
        self.sparsity(1)
    }

    /// `mean(min(W, 1 − W))` of each of `members` stacked copies.
    fn sparsity(&self, members: usize) -> Tensor<1> {
        ops::member_mean(ops::sparsity_to_unit(self.weight.val()), members)
    }

    /// Clamps `W` to [0, 1]; call after every optimizer step.
    pub fn clamp_weights(self) -> Self {
        Self {
            weight: ops::clamp_param(self.weight, 0.0, 1.0),
            ..self
        }
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.weight.lazy_shape()[0]
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.weight.lazy_shape()[1]
    }

    /// `(noise_low, noise_high)`, for the trainer's host step.
    #[cfg(feature = "flex")]
    #[doc(hidden)]
    pub fn noise_range(&self) -> (f64, f64) {
        (self.noise_low, self.noise_high)
    }
}

impl ArithmeticUnit for Snmu {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Snmu", &input.dims(), self.d_input() / members, members);
        let weight = self.weight.val();
        if !weight.is_require_grad() {
            return ops::nmu_product_members(input, weight, members);
        }
        let uniform = Distribution::Uniform(self.noise_low, self.noise_high);
        let noise = ops::init::member_random(input.shape(), uniform, members, &input.device());
        let noisy = ops::nmu_product_members(input.mul(noise.clone()), weight.clone(), members);
        noisy.div(ops::nmu_product_members(noise, weight, members))
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        Some(self.sparsity(members))
    }

    fn clamp_members(self) -> Self {
        self.clamp_weights()
    }

    fn snap(self) -> Self {
        Self {
            weight: ops::snap_param(self.weight, 1.0, Some((0.0, 1.0))),
            ..self
        }
    }
}

impl Discretize for Snmu {
    /// `Π_i x_i^W_ij` with `W` snapped to {0, 1}: the evaluation form's formula.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight.val(), Levels::Unit, options);
        let outputs = w.products(inputs, false);
        Ok(w.into_layer(outputs))
    }
}

sized_display!(Snmu);

#[cfg(test)]
mod tests {
    use super::*;

    fn snmu(w: [[f32; 1]; 3], device: &Device) -> Snmu {
        Snmu {
            weight: Param::from_data(w, device),
            noise_low: 1.0,
            noise_high: 5.0,
        }
    }

    /// At discrete weights the noise cancels: training and evaluation give `x0·x2`, to the
    /// roundings of two products of three factors each and a division (< 1e-6 relative).
    #[test]
    fn noise_cancels_at_discrete_weights() {
        let device = Device::default().autodiff();
        let layer = snmu([[1.0], [0.0], [1.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -7.0, 2.0], [-0.5, 4.0, 8.0]], &device);
        let trained = layer
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (got, want) in trained.iter().zip([6.0f32, -4.0]) {
            assert!(((got - want) / want).abs() < 1e-6, "{trained:?}");
        }
        let plain = layer.valid().forward(x.inner()).into_data();
        assert_eq!(plain.try_to_vec::<f32>().unwrap(), [6.0, -4.0]);
    }

    /// Between 0 and 1 the noise matters: the training output varies from call to call, and
    /// the evaluation output is the plain NMU's.
    #[test]
    fn noise_perturbs_weights_between_zero_and_one() {
        let device = Device::default().autodiff();
        let layer = snmu([[0.5], [0.0], [1.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -7.0, 2.0]], &device);
        let draw = || layer.forward(x.clone()).into_scalar::<f32>();
        assert_ne!(draw(), draw());
        // (0.5·3 + 0.5)·1·2 = 4.
        assert_eq!(layer.valid().forward(x.inner()).into_scalar::<f32>(), 4.0);
    }

    #[test]
    fn invalid_noise_is_refused_by_field() {
        let err = SnmuConfig::new(2, 1)
            .with_noise_high(0.5)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), "noise_high");
    }
}
