//! The static-toy model: two stacked NALUs.

use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::data::N_FEATURES;
use crate::{Nalu, NaluConfig};

/// `Nalu(100 → hidden)` then `Nalu(hidden → 1)`, as in the paper and the Keras reference.
#[derive(Module, Debug)]
pub struct StaticToyModel {
    /// First layer, `[.., 100] → [.., hidden]`.
    pub hidden: Nalu,
    /// Second layer, `[.., hidden] → [.., 1]`.
    pub output: Nalu,
}

/// Burn's backend random generators are process-wide: seeding and drawing the initial weights
/// must not interleave with another thread doing the same.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

impl StaticToyModel {
    /// A freshly initialised model whose weights depend only on `seed` (and the backend).
    pub fn init(hidden: usize, seed: u64, device: &Device) -> Self {
        let _guard = SEEDED_INIT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let model = Self {
            hidden: NaluConfig::new(N_FEATURES, hidden).init(device),
            output: NaluConfig::new(hidden, 1).init(device),
        };
        // Parameters are drawn lazily on first use: draw them now, under the lock.
        model.forward(Tensor::zeros([1, N_FEATURES], device));
        model
    }

    /// `output(hidden(x))`: `[batch, 100] → [batch, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.hidden.forward(x))
    }
}

/// Mean squared error of `model` on `(x, y)`, as f64.
pub fn mse(model: &StaticToyModel, x: Tensor<2>, y: Tensor<2>) -> f64 {
    let err = model.forward(x).sub(y);
    err.clone().mul(err).mean().into_scalar::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights() {
        let device = Device::default();
        let w = |seed| {
            StaticToyModel::init(2, seed, &device)
                .hidden
                .nac
                .w_hat
                .val()
                .into_data()
        };
        assert_eq!(w(3), w(3));
        assert_ne!(w(3), w(4));
    }

    #[test]
    fn mse_is_mean_of_squared_errors() {
        let device = Device::default();
        let model = StaticToyModel::init(2, 0, &device);
        let x = Tensor::<2>::ones([2, N_FEATURES], &device);
        let pred = model.forward(x.clone()).into_data().convert::<f64>();
        let p = pred.try_to_vec::<f64>().unwrap();
        let y = Tensor::<2>::from_data([[1.0f32], [-2.0]], &device);
        let expected = ((p[0] - 1.0).powi(2) + (p[1] + 2.0).powi(2)) / 2.0;
        assert!((mse(&model, x, y) - expected).abs() < 1e-4 * expected.max(1.0));
    }
}
