//! The neural multiplication unit (NMU) of Madsen & Johansen 2020, "Neural Arithmetic Units".

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

/// Configuration to create a [`Nmu`] layer using the [init function](NmuConfig::init).
#[derive(Config, Debug)]
pub struct NmuConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
}

/// Neural multiplication unit: each output multiplies the inputs its weights select.
///
/// `z_j = Π_i (W_ij·x_i + 1 − W_ij)`: a weight of 1 takes `x_i` into the product, a weight of 0
/// leaves it out (factor 1). Works for negative and zero inputs, unlike NALU's log-space path.
/// `W` is clamped to [0, 1] after every optimizer step ([`Nmu::clamp_weights`]); the sparsity
/// regulariser is `R = mean(min(W, 1 − W))` ([`Nmu::regularizer`]). Initialised uniform in
/// [0.25, 0.75].
///
/// Should be created with [`NmuConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nmu {
    /// `W`, shape `[d_input, d_output]`.
    pub weight: Param<Tensor<2>>,
}

impl NmuConfig {
    /// Checks the config: both sizes must be at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NmuConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NmuConfig", "d_output", self.d_output)
    }

    /// Initialises a new [`Nmu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NmuConfig::validate`].
    pub fn init(&self, device: &Device) -> Nmu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let init = Initializer::Uniform {
            min: 0.25,
            max: 0.75,
        };
        Nmu {
            weight: ops::init::param(&init, [self.d_input, self.d_output], None, None, device),
        }
    }
}

impl Nmu {
    /// `z_j = Π_i (W_ij·x_i + 1 − W_ij)` over the last axis.
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

impl ArithmeticUnit for Nmu {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let d_in = self.d_input() / members;
        ops::check_input("Nmu", &input.dims(), d_in, members);
        ops::nmu_product_members(input, self.weight.val(), members)
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
        }
    }
}

impl Discretize for Nmu {
    /// `Π_i x_i^W_ij` with `W` snapped to {0, 1}.
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

sized_display!(Nmu);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::tensor::TensorData;

    fn nmu(w: [[f32; 2]; 3], device: &Device) -> Nmu {
        Nmu {
            weight: Param::from_data(w, device),
        }
    }

    #[test]
    fn discrete_weights_multiply_selected_inputs_of_any_sign() {
        let device = Device::default();
        // z0 = x0·x2, z1 = x1.
        let layer = nmu([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats(
            [[3.0, -5.0, 7.5], [-2.5, 0.0, -0.5], [0.0, 4.0, 9.0]],
            &device,
        );
        let y = layer.forward(x).into_data();
        assert_eq!(
            y,
            TensorData::from([[22.5f32, -5.0], [1.25, 0.0], [0.0, 4.0]])
        );
    }

    #[test]
    fn fractional_weights_interpolate_each_factor() {
        let device = Device::default();
        // W = ½: each factor is (x + 1) / 2.
        let layer = nmu([[0.5, 0.0], [0.5, 0.0], [0.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, -5.0, 7.0]], &device);
        let y = layer.forward(x).into_data();
        assert_eq!(y, TensorData::from([[-4.0f32, 1.0]]));
    }

    #[test]
    fn init_is_uniform_in_quarter_to_three_quarters() {
        let layer = NmuConfig::new(50, 4).init(&Device::default());
        layer.weight.to_data().assert_within_range(0.25..0.75);
    }

    #[test]
    fn regularizer_is_zero_at_discrete_weights_and_positive_between() {
        let device = Device::default();
        let discrete = nmu([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], &device);
        assert_eq!(discrete.regularizer().into_scalar::<f32>(), 0.0);
        // min(w, 1 − w) for 0.5, 0.25, 0.9, 0, 1, 0.6 = 0.5, 0.25, 0.1, 0, 0, 0.4 → mean 1.25/6.
        let between = nmu([[0.5, 0.25], [0.9, 0.0], [1.0, 0.6]], &device);
        let r = between.regularizer().into_scalar::<f32>();
        assert!((r - 1.25 / 6.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn clamping_after_an_optimizer_step_keeps_weights_in_range() {
        let device = Device::default().autodiff();
        let layer = nmu([[0.9, 0.1], [0.5, 0.5], [1.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[2.0, 2.0, 2.0]], &device);
        // dz/dW_ij = (x_i − 1)·Π_{k≠i}(…) > 0: ascending column 0 and descending column 1 with a
        // large step leaves [0, 1] on both sides.
        let loss = layer
            .forward(x)
            .mul(Tensor::from_floats([[-1.0, 1.0]], &device))
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let stepped = SgdConfig::new().init().step(10.0, layer, grads);
        let w = stepped
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            w.iter().any(|&v| v > 1.0) && w.iter().any(|&v| v < 0.0),
            "{w:?}"
        );
        let clamped = stepped.clamp_weights();
        let w = clamped
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(w.iter().all(|v| (0.0..=1.0).contains(v)), "{w:?}");
        let grads = clamped
            .forward(Tensor::<2>::ones([1, 3], &device))
            .sum()
            .backward();
        assert!(clamped.weight.grad(&grads).is_some());
    }

    #[test]
    #[should_panic(expected = "Nmu: input must have d_input = 3 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        NmuConfig::new(3, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 2], &device));
    }

    #[test]
    fn snap_rounds_weights_to_zero_or_one() {
        let device = Device::default();
        let trained = nmu([[0.97, 0.51], [0.02, 0.49], [0.0, 1.0]], &device);
        let w = trained.snap().weight.val().into_data();
        assert_eq!(w, TensorData::from([[1.0f32, 1.0], [0.0, 0.0], [0.0, 1.0]]));
    }
}
