//! The neural multiplicative reciprocal unit (NMRU) of Mistry, Farrahi & Hare 2022, "Exploring
//! the Learning Mechanisms of Neural Division Modules" (TMLR; arXiv 2110.05177 "Learning
//! Division with Neural Arithmetic Logic Modules"), with the sign retrieval they ran it with.

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

/// Configuration to create a [`Nmru`] layer using the [init function](NmruConfig::init).
#[derive(Config, Debug)]
pub struct NmruConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` in the training reciprocal `1/(x + ε)` (f32's machine epsilon, as the authors').
    #[config(default = 1.1920928955078125e-7)]
    pub epsilon: f64,
}

/// Neural multiplicative reciprocal unit: an NMU over the inputs and their reciprocals, so that
/// each output multiplies and divides the inputs its weights select, with the sign of the
/// result recovered from the signs of the selected inputs.
///
/// With `x' = [x, 1/x]` (`2·d_input` features; in training `1/(x + ε)`) and `k = π·[x' < 0]`:
///
/// `z_j = Π_k (W_kj·|x'_k| + 1 − W_kj) · cos(Σ_k k_k·W_kj)`
///
/// `W_kj = 1` for `k < d_input` takes `x_k` into the product, for `k ≥ d_input` divides by
/// `x_{k − d_input}` (`a / b`: `W = [1, 0, 0, 1]`). `W` is clamped to [0, 1] after every
/// optimizer step ([`Nmru::clamp_weights`]); the regulariser is `mean(min(W, 1 − W))`
/// ([`Nmru::regularizer`]). Initialised uniform in [0.25, 0.75]. The layer is in training when
/// its weights track gradients (an autodiff device); otherwise it evaluates with `1/x`.
///
/// Should be created with [`NmruConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nmru {
    /// `W`, shape `[2·d_input, d_output]`: the rows of the inputs, then of their reciprocals.
    pub weight: Param<Tensor<2>>,
    epsilon: f64,
}

impl NmruConfig {
    /// Checks the config: sizes at least 1, `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NmruConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NmruConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("NmruConfig", "epsilon", self.epsilon)
    }

    /// Initialises a new [`Nmru`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NmruConfig::validate`].
    pub fn init(&self, device: &Device) -> Nmru {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let init = Initializer::Uniform {
            min: 0.25,
            max: 0.75,
        };
        Nmru {
            weight: ops::init::param(&init, [2 * self.d_input, self.d_output], None, None, device),
            epsilon: self.epsilon,
        }
    }
}

impl Nmru {
    /// `z_j = Π_k (W_kj·|x'_k| + 1 − W_kj) · cos(Σ_k k_k·W_kj)` over the last axis, with
    /// `x' = [x, 1/x]` and `k = π·[x' < 0]`.
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

    /// `ε` in the training reciprocal `1/(x + ε)`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.weight.lazy_shape()[0] / 2
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.weight.lazy_shape()[1]
    }
}

impl ArithmeticUnit for Nmru {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Nmru", &input.dims(), self.d_input() / members, members);
        let weight = self.weight.val();
        // The authors keep x + ε away from 0 while training and divide exactly when evaluating.
        let reciprocal = match weight.is_require_grad() {
            true => input.clone().add_scalar(self.epsilon).recip(),
            false => input.clone().recip(),
        };
        // Member k's rows of W are its inputs, then its reciprocals: so are its features.
        let x = Tensor::cat(vec![input, reciprocal], D - 1);
        let sign = ops::sign_factor(&x, weight.clone(), members);
        ops::nmu_product_members(x.abs(), weight, members).mul(sign)
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

impl Discretize for Nmru {
    /// `Π_i x_i^{W_ij − W_{d_input + i, j}}` with `W` snapped to {0, 1}: the reciprocal rows
    /// divide.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let d_in = inputs.len();
        let w = SnappedWeights::new(self.weight.val(), Levels::Unit, options);
        let outputs = (0..self.d_output())
            .map(|j| {
                let factors = w.column(j).map(|(k, v)| match k < d_in {
                    true => (inputs[k].clone(), v),
                    false => (inputs[k - d_in].clone(), -v),
                });
                Expr::product(factors, false)
            })
            .collect();
        let mut layer = w.into_layer(outputs);
        for support in &mut layer.support {
            support.iter_mut().for_each(|k| *k %= d_in);
        }
        Ok(layer)
    }
}

sized_display!(Nmru);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn nmru(w: [[f32; 2]; 4], device: &Device) -> Nmru {
        Nmru {
            weight: Param::from_data(w, device),
            epsilon: 1.1920928955078125e-7,
        }
    }

    /// Relative error below 1e-6: a product of two factors and a cosine of a multiple of π,
    /// each a few f32 roundings.
    fn assert_rel(got: Tensor<2>, want: &[f32]) {
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!(((g - w) / w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn discrete_weights_divide_and_multiply_with_signs() {
        let device = Device::default();
        // z0 = x0 / x1, z1 = x0·x1.
        let layer = nmru([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -4.0], [-2.5, -0.5], [6.0, 0.25]], &device);
        let want = [-0.75, -12.0, 5.0, 1.25, 24.0, 1.5];
        assert_rel(layer.forward(x), &want);
    }

    #[test]
    fn regularizer_is_zero_at_discrete_weights_and_positive_between() {
        let device = Device::default();
        let discrete = nmru([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], &device);
        assert_eq!(discrete.regularizer().into_scalar::<f32>(), 0.0);
        // min(w, 1 − w) of 0.5, 0.25, 0.9 and five 0 or 1: (0.5 + 0.25 + 0.1)/8.
        let between = nmru([[0.5, 0.0], [0.25, 1.0], [0.9, 0.0], [0.0, 1.0]], &device);
        let r = between.regularizer().into_scalar::<f32>();
        assert!((r - 0.85 / 8.0).abs() < 1e-7, "{r}");
    }

    #[test]
    fn init_clamp_and_snap_keep_weights_in_the_unit_interval() {
        let device = Device::default();
        let layer = NmruConfig::new(3, 2).init(&device);
        assert_eq!(layer.weight.dims(), [6, 2]);
        layer.weight.to_data().assert_within_range(0.25..0.75);
        let out = nmru([[1.4, -0.2], [0.3, 0.6], [0.0, 1.0], [0.5, 0.49]], &device);
        let clamped = out.clamp_weights().weight.val().into_data();
        assert_eq!(
            clamped,
            TensorData::from([[1.0f32, 0.0], [0.3, 0.6], [0.0, 1.0], [0.5, 0.49]])
        );
        let trained = nmru(
            [[0.97, 0.02], [0.3, 0.6], [0.0, 1.0], [0.51, 0.49]],
            &device,
        );
        let snapped = trained.snap().weight.val().into_data();
        assert_eq!(
            snapped,
            TensorData::from([[1.0f32, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
        );
    }

    #[test]
    #[should_panic(expected = "Nmru: input must have d_input = 2 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        NmruConfig::new(2, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 3], &device));
    }
}
