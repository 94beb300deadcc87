//! The neural addition unit (NAU) of Madsen & Johansen 2020, "Neural Arithmetic Units".

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

/// Configuration to create a [`Nau`] layer using the [init function](NauConfig::init).
#[derive(Config, Debug)]
pub struct NauConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
}

/// Neural addition unit: a linear map without bias whose weights live in [−1, 1] and are
/// regularised towards {−1, 0, 1}, so that it learns exact sums and differences.
///
/// `z = x·W`, with `W` clamped to [−1, 1] after every optimizer step ([`Nau::clamp_weights`]) and
/// the sparsity regulariser `R = mean(min(|W|, 1 − |W|))` ([`Nau::regularizer`]) added to the
/// loss. Initialised uniform in ±`r`, `r = min(0.5, √3·√(2 / (d_input + d_output)))`.
///
/// Should be created with [`NauConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nau {
    /// `W`, shape `[d_input, d_output]`.
    pub weight: Param<Tensor<2>>,
}

impl NauConfig {
    /// Checks the config: both sizes must be at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NauConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NauConfig", "d_output", self.d_output)
    }

    /// Initialises a new [`Nau`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NauConfig::validate`].
    pub fn init(&self, device: &Device) -> Nau {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let fan = (self.d_input + self.d_output) as f64;
        let r = f64::min(0.5, 3f64.sqrt() * (2.0 / fan).sqrt());
        let init = Initializer::Uniform { min: -r, max: r };
        Nau {
            weight: ops::init::param(&init, [self.d_input, self.d_output], None, None, device),
        }
    }
}

impl Nau {
    /// `z = x·W` over the last axis.
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

impl ArithmeticUnit for Nau {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let d_in = self.d_input() / members;
        ops::check_input("Nau", &input.dims(), d_in, members);
        ops::matmul_members(input, self.weight.val(), members)
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

impl Discretize for Nau {
    /// `Σ_i W_ij·x_i` with `W` snapped to {−1, 0, 1}.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight.val(), Levels::SignedUnit, options);
        let outputs = w.sums(inputs);
        Ok(w.into_layer(outputs))
    }

    fn linear_map(&self) -> Option<Tensor<2>> {
        Some(self.weight.val())
    }
}

sized_display!(Nau);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::tensor::TensorData;

    fn nau(w: [[f32; 2]; 3], device: &Device) -> Nau {
        Nau {
            weight: Param::from_data(w, device),
        }
    }

    #[test]
    fn discrete_weights_add_and_subtract_exactly() {
        let device = Device::default();
        // z0 = x0 + x2, z1 = x1 − x0; negative inputs are fine.
        let layer = nau([[1.0, -1.0], [0.0, 1.0], [1.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -5.0, 7.5], [-2.5, 100.0, -0.25]], &device);
        let y = layer.forward(x).into_data();
        assert_eq!(y, TensorData::from([[10.5f32, -8.0], [-2.75, 102.5]]));
    }

    #[test]
    fn init_is_uniform_within_the_papers_bound() {
        let device = Device::default();
        // r = min(0.5, sqrt(6 / 102)) = 0.2425 for 100 → 2; 0.5 for 2 → 1.
        let layer = NauConfig::new(100, 2).init(&device);
        let bound = (6.0f32 / 102.0).sqrt();
        layer.weight.to_data().assert_within_range(-bound..bound);
        let small = NauConfig::new(2, 1).init(&device);
        small.weight.to_data().assert_within_range(-0.5..0.5);
    }

    #[test]
    fn regularizer_is_zero_at_discrete_weights_and_positive_between() {
        let device = Device::default();
        let discrete = nau([[1.0, -1.0], [0.0, 1.0], [1.0, 0.0]], &device);
        assert_eq!(discrete.regularizer().into_scalar::<f32>(), 0.0);
        // min(|w|, 1 − |w|) for 0.5, −0.25, 0.9, 0, 1, −1 = 0.5, 0.25, 0.1, 0, 0, 0 → mean 0.85/6.
        let between = nau([[0.5, -0.25], [0.9, 0.0], [1.0, -1.0]], &device);
        let r = between.regularizer().into_scalar::<f32>();
        assert!((r - 0.85 / 6.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn clamping_after_an_optimizer_step_keeps_weights_in_range() {
        let device = Device::default().autodiff();
        let layer = nau([[0.9, -0.9], [0.5, 0.0], [1.0, -1.0]], &device);
        let x = Tensor::<2>::from_floats([[1.0, 1.0, 1.0]], &device);
        // Pushes every weight up or down by lr·x = 2: far out of [−1, 1] without clamping.
        let loss = layer
            .forward(x)
            .mul(Tensor::from_floats([[-1.0, 1.0]], &device))
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let stepped = SgdConfig::new().init().step(2.0, layer, grads);
        let w = stepped
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            w.iter().any(|v| v.abs() > 1.0),
            "the step leaves the range: {w:?}"
        );
        let clamped = stepped.clamp_weights();
        let w = clamped
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(w, [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
        // The clamped weight is still a trainable leaf.
        let x = Tensor::<2>::from_floats([[1.0, 1.0, 1.0]], &device);
        let grads = clamped.forward(x).sum().backward();
        assert!(clamped.weight.grad(&grads).is_some());
    }

    #[test]
    fn zero_sizes_are_refused() {
        assert_eq!(
            NauConfig::new(0, 2).validate().unwrap_err().to_string(),
            "NauConfig.d_input must be at least 1, got 0"
        );
    }

    #[test]
    #[should_panic(expected = "Nau: input must have d_input = 3 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        NauConfig::new(3, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 2], &device));
    }

    #[test]
    fn snap_rounds_weights_to_the_nearest_of_minus_one_zero_one() {
        let device = Device::default();
        let trained = nau([[0.97, -0.51], [0.02, 0.49], [-1.0, 0.6]], &device);
        let w = trained.snap().weight.val().into_data();
        assert_eq!(
            w,
            TensorData::from([[1.0f32, -1.0], [0.0, 0.0], [-1.0, 1.0]])
        );
    }
}
