//! The multiplicative NAC (NAC•) of Trask et al. 2018: a NAC applied in log space.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, Levels, SnapOptions, SnappedWeights,
};
use crate::nac::{Nac, NacConfig};
use crate::unit::sized_display;
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`NacMul`] layer using the [init function](NacMulConfig::init).
#[derive(Config, Debug)]
pub struct NacMulConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` in `log(|x| + ε)`; keeps the logarithm finite at `x = 0`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// How `Ŵ` and `M̂` are initialised (as [`NacConfig::initializer`]).
    #[config(default = "Initializer::XavierUniform { gain: 1.0 }")]
    pub initializer: Initializer,
}

/// Multiplicative neural accumulator, NAC•: products, quotients and powers of the magnitudes
/// of its inputs, with the NAC's weights pushed towards {−1, 0, 1}.
///
/// `W = tanh(Ŵ) ⊙ σ(M̂)`, `y = exp(log(|x| + ε)·W)`: the multiplicative path of a [`Nalu`]
/// alone (Madsen & Johansen 2020 compare it as "NAC•"). Its outputs are positive: the sign of
/// `x` is lost.
///
/// [`Nalu`]: crate::Nalu
///
/// Should be created with [`NacMulConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct NacMul {
    /// The accumulator holding `Ŵ` and `M̂`.
    pub nac: Nac,
    epsilon: f64,
}

impl NacMulConfig {
    /// Checks the config: both sizes must be at least 1 and `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NacMulConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NacMulConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("NacMulConfig", "epsilon", self.epsilon)
    }

    /// Initialises a new [`NacMul`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NacMulConfig::validate`].
    pub fn init(&self, device: &Device) -> NacMul {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        NacMul {
            nac: NacConfig::new(self.d_input, self.d_output)
                .with_initializer(self.initializer.clone())
                .init(device),
            epsilon: self.epsilon,
        }
    }
}

impl NacMul {
    /// `y = exp(log(|x| + ε)·W)` over the last axis.
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

    /// The effective weight `W = tanh(Ŵ) ⊙ σ(M̂)`, shape `[d_input, d_output]`.
    pub fn weight(&self) -> Tensor<2> {
        self.nac.weight()
    }

    /// `ε` in `log(|x| + ε)`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.nac.d_input()
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.nac.d_output()
    }
}

impl ArithmeticUnit for NacMul {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let d_in = self.nac.d_input_of(members);
        ops::check_input("NacMul", &input.dims(), d_in, members);
        ops::log_space_matmul(input, self.weight(), self.epsilon, members)
    }

    fn snap(self) -> Self {
        Self {
            nac: self.nac.snap(),
            ..self
        }
    }

    /// `W` to −1, −½, 0, ½ or 1: `√a` and `1/√a` are in the NAC•'s range.
    fn snap_halves(self) -> Self {
        Self {
            nac: self.nac.snapped(2.0),
            ..self
        }
    }
}

impl Discretize for NacMul {
    /// `Π_i |x_i|^W_ij` with `W` snapped to {−1, 0, 1}.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight(), Levels::SignedUnit, options);
        let outputs = w.products(inputs, true);
        Ok(w.into_layer(outputs))
    }
}

sized_display!(NacMul);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;

    /// A NAC• whose `W` is `pattern` exactly (`tanh(40) = σ(40) = 1` and `σ(−40) < 1e-17`).
    fn nac_mul(pattern: [[f32; 1]; 2], device: &Device) -> NacMul {
        let mut layer = NacMulConfig::new(2, 1).init(device);
        layer.nac = Nac {
            w_hat: Param::from_data(pattern.map(|r| r.map(|w| 40.0 * w)), device),
            m_hat: Param::from_data(
                pattern.map(|r| r.map(|w| if w == 0.0 { -40.0 } else { 40.0 })),
                device,
            ),
        };
        layer
    }

    /// A near miss of `√|a|` (W = 0.52 and 0.02) snaps with halves to the root, and with the
    /// plain snap to `|a|`.
    #[test]
    fn snap_halves_makes_a_roots_near_miss_exact() {
        let device = Device::default();
        let mut near = NacMulConfig::new(2, 1).init(&device);
        near.nac = Nac {
            w_hat: Param::from_data([[0.52f32.atanh()], [0.02f32.atanh()]], &device),
            m_hat: Param::from_data([[40.0f32], [40.0]], &device),
        };
        let x = Tensor::<2>::from_floats([[4.0, 3.0], [12.5, 0.5], [-0.3, 7.0]], &device);
        let out = |u: NacMul| {
            u.forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (root, plain, near) = (
            out(near.clone().snap_halves()),
            out(near.clone().snap()),
            out(near),
        );
        for (k, a) in [4.0f32, 12.5, -0.3].into_iter().enumerate() {
            // W within an ulp of ½ (tanh(atanh(½)) in f32) times |log a| < 3, and ε = 1e-7
            // moving |a| = 0.3 by 3e-7: under 1e-6 relative. The near miss is 1.5% to 5% off.
            let want = a.abs().sqrt();
            assert!(
                ((root[k] - want) / want).abs() < 1e-6,
                "{} vs {want}",
                root[k]
            );
            assert!(
                ((near[k] - want) / want).abs() > 0.01,
                "{} vs {want}",
                near[k]
            );
            assert!(
                ((plain[k] - a.abs()) / a).abs() < 1e-6,
                "{} vs {a}",
                plain[k]
            );
        }
    }

    #[test]
    fn discrete_weights_multiply_and_divide_magnitudes() {
        let device = Device::default();
        let x = Tensor::<2>::from_floats([[3.0, 4.0], [-0.5, 8.0], [12.5, -0.2]], &device);
        type Case = ([[f32; 1]; 2], fn(f32, f32) -> f32);
        let cases: [Case; 3] = [
            ([[1.0], [1.0]], |a, b| (a * b).abs()),
            ([[1.0], [-1.0]], |a, b| (a / b).abs()),
            ([[1.0], [0.0]], |a, _| a.abs()),
        ];
        for (pattern, op) in cases {
            let y = nac_mul(pattern, &device).forward(x.clone());
            let y = y.into_data().try_to_vec::<f32>().unwrap();
            for (got, row) in y.iter().zip([[3.0, 4.0], [-0.5, 8.0], [12.5, -0.2]]) {
                let want = op(row[0], row[1]);
                // exp of a sum of two logs (|log| < 3), a few ulp each: 1e-6 relative; ε = 1e-7
                // moves an input of 0.2 by 5e-7.
                assert!(
                    ((got - want) / want).abs() < 1e-5,
                    "{pattern:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert_eq!(
            NacMulConfig::new(2, 1)
                .with_epsilon(0.0)
                .validate()
                .unwrap_err()
                .to_string(),
            "NacMulConfig.epsilon must be finite and greater than 0, got 0"
        );
    }

    #[test]
    #[should_panic(expected = "NacMul: input must have d_input = 2 features")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        NacMulConfig::new(2, 1)
            .init(&device)
            .forward(Tensor::<2>::zeros([1, 3], &device));
    }
}
