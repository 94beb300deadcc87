//! The neural reciprocal unit (NRU) of Mistry, Farrahi & Hare 2022, "Exploring the Learning
//! Mechanisms of Neural Division Modules" (TMLR; arXiv 2110.05177).

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

/// Smallest `|x|` whose logarithm the NRU takes: `0^0` is then 1, as the authors' `0 ** 0`.
const TINY: f64 = 1e-30;

/// Configuration to create a [`Nru`] layer using the [init function](NruConfig::init).
#[derive(Config, Debug)]
pub struct NruConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
}

/// Neural reciprocal unit: each output multiplies the inputs its weights select with power 1
/// and divides by those with power −1, signs included.
///
/// `z_j = Π_i (sign(x_i)·|x_i|^{W_ij}·g(W_ij) + 1 − g(W_ij))`, where the selector
/// `g(W) = tanh²(1000·W)` while training and `|W|` when evaluating: a weight of ±1 takes `x_i`
/// or `1/x_i` into the product, 0 leaves it out. `W` is clamped to [−1, 1] after every optimizer
/// step ([`Nru::clamp_weights`]); the regulariser is the NAU's, `mean(min(|W|, 1 − |W|))`
/// ([`Nru::regularizer`]); initialised as the NAU. The layer is in training when its weights
/// track gradients (an autodiff device).
///
/// Should be created with [`NruConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nru {
    /// `W`, shape `[d_input, d_output]`.
    pub weight: Param<Tensor<2>>,
}

impl NruConfig {
    /// Checks the config: both sizes must be at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NruConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NruConfig", "d_output", self.d_output)
    }

    /// Initialises a new [`Nru`] on `device`: uniform in ±`r`,
    /// `r = min(0.5, √3·√(2 / (d_input + d_output)))`, as the NAU.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NruConfig::validate`].
    pub fn init(&self, device: &Device) -> Nru {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let fan = (self.d_input + self.d_output) as f64;
        let r = f64::min(0.5, 3f64.sqrt() * (2.0 / fan).sqrt());
        let init = Initializer::Uniform { min: -r, max: r };
        Nru {
            weight: ops::init::param(&init, [self.d_input, self.d_output], None, None, device),
        }
    }
}

impl Nru {
    /// `z_j = Π_i (sign(x_i)·|x_i|^{W_ij}·g(W_ij) + 1 − g(W_ij))` over the last axis.
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

    /// The sparsity regulariser `mean(min(|W|, 1 − |W|))`: 0 when every weight is −1, 0 or 1.
    pub fn regularizer(&self) -> Tensor<1> {
        self.sparsity(1)
    }

    /// `mean(min(|W|, 1 − |W|))` of each of `members` stacked copies.
    fn sparsity(&self, members: usize) -> Tensor<1> {
        ops::member_mean(ops::sparsity_to_signed_unit(self.weight.val()), members)
    }

    /// Clamps `W` to [−1, 1]; call after every optimizer step.
    pub fn clamp_weights(self) -> Self {
        Self {
            weight: ops::clamp_param(self.weight, -1.0, 1.0),
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
}

impl ArithmeticUnit for Nru {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Nru", &input.dims(), self.d_input() / members, members);
        let weight = self.weight.val();
        let training = weight.is_require_grad();
        ops::factor_product(input, weight, members, |x, w| {
            let select = match training {
                true => w.clone().mul_scalar(1000.0).tanh().square(),
                false => w.clone().abs(),
            };
            let power = x.clone().abs().clamp_min(TINY).log().mul(w).exp();
            let taken = x.sign().mul(power).mul(select.clone());
            taken.add(ops::one_minus(select))
        })
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        Some(self.sparsity(members))
    }

    fn clamp_members(self) -> Self {
        self.clamp_weights()
    }

    fn snap(self) -> Self {
        Self {
            weight: ops::snap_param(self.weight, 1.0, Some((-1.0, 1.0))),
        }
    }
}

impl Discretize for Nru {
    /// `Π_i x_i^{W_ij}` with `W` snapped to {−1, 0, 1}.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight.val(), Levels::SignedUnit, options);
        let outputs = w.products(inputs, false);
        Ok(w.into_layer(outputs))
    }
}

sized_display!(Nru);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn nru(w: [[f32; 2]; 2], device: &Device) -> Nru {
        Nru {
            weight: Param::from_data(w, device),
        }
    }

    #[test]
    fn discrete_weights_divide_and_multiply_with_signs() {
        let device = Device::default();
        // z0 = x0 / x1, z1 = x0·x1; evaluated with g(W) = |W| (no gradients tracked).
        let layer = nru([[1.0, 1.0], [-1.0, 1.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -4.0], [-2.5, -0.5], [6.0, 0.25]], &device);
        let got = layer.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let want = [-0.75f32, -12.0, 5.0, 1.25, 24.0, 1.5];
        // exp(w·log|x|) rounds the log and the exp: a few f32 ulps, below 1e-6 relative.
        for (g, w) in got.iter().zip(want) {
            assert!(((g - w) / w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_zero_weight_leaves_its_input_out_even_at_zero() {
        let device = Device::default();
        let layer = nru([[1.0, 0.0], [0.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 5.0]], &device);
        let y = layer.forward(x).into_data();
        assert_eq!(y, TensorData::from([[2.0f32, 1.0], [0.0, 1.0]]));
    }

    #[test]
    fn training_selects_with_tanh_squared() {
        let device = Device::default().autodiff();
        // g(0.001) = tanh(1)² = 0.58: between leaving x out (1) and taking it in (x ≈ 9).
        let layer = nru([[0.001, 1.0], [0.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[9.0, 1.0]], &device);
        let y = layer.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let g = 1f64.tanh().powi(2);
        let want = g * 9f64.powf(0.001) + 1.0 - g;
        assert!((y[0] as f64 - want).abs() < 1e-6, "{y:?} vs {want}");
        assert!((y[1] - 9.0).abs() < 1e-5, "tanh(1000)² is 1 in f32: {y:?}");
    }

    #[test]
    fn clamp_and_snap_keep_weights_in_range() {
        let device = Device::default();
        let values = |layer: Nru| layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let out = nru([[1.4, -1.2], [0.3, -0.6]], &device);
        assert_eq!(values(out.clamp_weights()), [1.0, -1.0, 0.3, -0.6]);
        let trained = nru([[0.97, -0.52], [0.03, -0.49]], &device);
        // −0.49 rounds to −0, equal to 0.
        assert_eq!(values(trained.snap()), [1.0, -1.0, 0.0, 0.0]);
    }
}
