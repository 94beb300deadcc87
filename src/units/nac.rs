//! The neural accumulator (NAC) of Trask et al. 2018, "Neural Arithmetic Logic Units".

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

/// Configuration to create a [`Nac`] layer using the [init function](NacConfig::init).
#[derive(Config, Debug)]
pub struct NacConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// How `Ŵ` and `M̂` are initialised. Xavier-uniform (gain 1) matches the Keras reference's
    /// `glorot_uniform`.
    #[config(default = "Initializer::XavierUniform { gain: 1.0 }")]
    pub initializer: Initializer,
}

/// Neural accumulator: a linear map whose effective weights are pushed towards {−1, 0, 1}, so
/// that it learns exact additions and subtractions of its inputs.
///
/// `W = tanh(Ŵ) ⊙ σ(M̂)`, `y = x·W` (no bias).
///
/// Should be created with [`NacConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nac {
    /// `Ŵ`, shape `[d_input, d_output]`.
    pub w_hat: Param<Tensor<2>>,
    /// `M̂`, shape `[d_input, d_output]`.
    pub m_hat: Param<Tensor<2>>,
}

impl NacConfig {
    /// Checks the config: both sizes must be at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NacConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NacConfig", "d_output", self.d_output)
    }

    /// Initialises a new [`Nac`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NacConfig::validate`].
    pub fn init(&self, device: &Device) -> Nac {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        Nac {
            w_hat: init_matrix(&self.initializer, self.d_input, self.d_output, device),
            m_hat: init_matrix(&self.initializer, self.d_input, self.d_output, device),
        }
    }
}

/// A `[d_input, d_output]` parameter with the fan-in and fan-out the initializer expects.
pub(crate) fn init_matrix(
    initializer: &Initializer,
    d_input: usize,
    d_output: usize,
    device: &Device,
) -> Param<Tensor<2>> {
    ops::init::param(
        initializer,
        [d_input, d_output],
        Some(d_input),
        Some(d_output),
        device,
    )
}

impl Nac {
    /// The effective weight `W = tanh(Ŵ) ⊙ σ(M̂)`, shape `[d_input, d_output]`.
    pub fn weight(&self) -> Tensor<2> {
        ops::nac_weight(self.w_hat.val(), self.m_hat.val())
    }

    /// `y = x·W` over the last axis.
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]` (any rank, e.g. `[batch, d_input]` or `[batch, time, d_input]`)
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the layer and both sizes.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.w_hat.lazy_shape()[0]
    }

    /// The input size of each of `members` stacked copies.
    pub(crate) fn d_input_of(&self, members: usize) -> usize {
        self.d_input() / members
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.w_hat.lazy_shape()[1]
    }

    /// The NAC with `W` rounded to the nearest multiple of `1/steps` in [−1, 1].
    pub(crate) fn snapped(self, steps: f64) -> Self {
        let (w_hat, m_hat) = ops::snap_nac(self.w_hat, self.m_hat, 1.0, steps);
        Self { w_hat, m_hat }
    }
}

impl ArithmeticUnit for Nac {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        ops::check_input("Nac", &input.dims(), self.d_input_of(members), members);
        ops::matmul_members(input, self.weight(), members)
    }

    fn snap(self) -> Self {
        self.snapped(1.0)
    }
}

impl Discretize for Nac {
    /// `Σ_i W_ij·x_i` with `W` snapped to {−1, 0, 1}.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight(), Levels::SignedUnit, options);
        let outputs = w.sums(inputs);
        Ok(w.into_layer(outputs))
    }

    fn linear_map(&self) -> Option<Tensor<2>> {
        Some(self.weight())
    }
}

sized_display!(Nac);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    /// `tanh(40)·σ(40)` is 1 in f32 and `σ(−40)` below 1e-17, so these hand-set weights make `W`
    /// ±1 or 0 to within f32 rounding.
    const SAT: f32 = 40.0;

    fn nac_with_pattern(pattern: [[f32; 2]; 3], device: &Device) -> Nac {
        let w_hat = pattern.map(|row| row.map(|w| w * SAT));
        let m_hat = pattern.map(|row| row.map(|w| if w == 0.0 { -SAT } else { SAT }));
        Nac {
            w_hat: Param::from_data(w_hat, device),
            m_hat: Param::from_data(m_hat, device),
        }
    }

    #[test]
    fn saturated_weights_add_and_subtract_exactly() {
        let device = Device::default();
        // y0 = x0 + x2, y1 = x1 − x0
        let nac = nac_with_pattern([[1.0, -1.0], [0.0, 1.0], [1.0, 0.0]], &device);
        let x = Tensor::<2>::from_floats([[3.0, 5.0, 7.0], [-2.5, 100.0, 0.25]], &device);
        let y = nac.forward(x).into_data();
        y.assert_approx_eq::<f32>(
            &TensorData::from([[10.0f32, 2.0], [-2.25, 102.5]]),
            Tolerance::absolute(1e-5),
        );
    }

    #[test]
    fn weight_is_tanh_times_sigmoid() {
        let device = Device::default();
        let nac = Nac {
            w_hat: Param::from_data([[0.5f32], [-1.0]], &device),
            m_hat: Param::from_data([[0.0f32], [2.0]], &device),
        };
        let expected = [
            [0.5f32.tanh() * 0.5],
            [(-1.0f32).tanh() / (1.0 + (-2.0f32).exp())],
        ];
        nac.weight()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from(expected), Tolerance::absolute(1e-6));
    }

    #[test]
    fn init_shapes_and_default_initializer() {
        let config = NacConfig::new(5, 3);
        assert_eq!(config.initializer, Initializer::XavierUniform { gain: 1.0 });
        let nac = config.init(&Device::default());
        assert_eq!(nac.w_hat.dims(), [5, 3]);
        assert_eq!(nac.m_hat.dims(), [5, 3]);
        // Xavier-uniform bound sqrt(6 / (fan_in + fan_out)).
        let bound = (6.0f32 / 8.0).sqrt();
        nac.w_hat.to_data().assert_within_range(-bound..bound);
    }

    #[test]
    fn rank_3_matches_flattened_rank_2() {
        let device = Device::default();
        device.seed(7);
        let nac = NacConfig::new(4, 3).init(&device);
        let x = Tensor::<3>::random([2, 5, 4], burn::tensor::Distribution::Default, &device);
        let y3 = nac.forward(x.clone()).reshape([10, 3]);
        let y2 = nac.forward(x.reshape([10, 4]));
        // A backend may sum the 4 terms in another order for rank 3: at most 3 roundings of
        // sums below 4·1·1 (|x| < 1, |W| < 1), 3·2⁻²⁴·4 < 1e-6.
        y3.into_data()
            .assert_approx_eq::<f32>(&y2.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn zero_sizes_are_refused() {
        assert_eq!(
            NacConfig::new(0, 2).validate().unwrap_err().to_string(),
            "NacConfig.d_input must be at least 1, got 0"
        );
        assert_eq!(
            NacConfig::new(2, 0).validate().unwrap_err().field(),
            "d_output"
        );
    }

    #[test]
    #[should_panic(expected = "NacConfig.d_output must be at least 1, got 0")]
    fn init_panics_with_the_validation_message() {
        NacConfig::new(3, 0).init(&Device::default());
    }

    #[test]
    #[should_panic(
        expected = "Nac: input must have d_input = 4 features in its last dimension, \
                               got 3 (input shape [2, 3])"
    )]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        let nac = NacConfig::new(4, 2).init(&device);
        nac.forward(Tensor::<2>::zeros([2, 3], &device));
    }

    #[test]
    fn display() {
        let nac = NacConfig::new(3, 5).init(&Device::default());
        assert_eq!(
            format!("{nac}"),
            "Nac {d_input: 3, d_output: 5, params: 30}"
        );
    }

    #[test]
    fn snap_makes_the_effective_weight_exactly_discrete() {
        let device = Device::default();
        // W = tanh(Ŵ)·σ(M̂) ≈ 0.88, −0.73, 0.10, 0.05, 0.18, 0.73: rounds to 1, −1, 0, 0, 0, 1.
        let trained = Nac {
            w_hat: Param::from_data([[3.0, -1.0], [0.2, 0.1], [0.8, 1.0]], &device),
            m_hat: Param::from_data([[2.0, 3.0], [0.0, 0.0], [-1.0, 3.0]], &device),
        };
        let w = ops::nac_weight(trained.w_hat.val(), trained.m_hat.val());
        w.into_data().assert_within_range(-0.9..0.9);
        let snapped = trained.snap();
        let w = ops::nac_weight(snapped.w_hat.val(), snapped.m_hat.val()).into_data();
        assert_eq!(
            w,
            TensorData::from([[1.0f32, -1.0], [0.0, 0.0], [0.0, 1.0]])
        );
    }
}
