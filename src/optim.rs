//! RMSProp with a one-pass update for small parameters on the CPU.
//!
//! Burn's `RmsProp` updates each parameter with some ten tensor ops; on a layer of 200 weights
//! their dispatch costs far more than the arithmetic (about 40% of a static-toy training step).
//! [`FastRmsProp`] computes the same update,
//!
//! `s ← ρ·s + (1 − ρ)·g²`, `θ ← θ − lr · g / (√s + ε)` (`s₀ = 0`),
//!
//! in one loop over host memory when the parameter is small and lives on the flex backend,
//! and with tensor ops everywhere else. It is plain RMSProp without momentum or centring, the
//! variant Keras uses; with `ρ = 0.9, ε = 1e-7` it is Keras's default.

use burn::config::Config;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, SquareAvgState};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::ops::fused;

/// Largest parameter (in elements) updated through host memory; above it, tensor ops win.
const HOST_MAX_LEN: usize = 1 << 16;

/// Configuration of [`FastRmsProp`].
#[derive(Config, Debug)]
pub struct FastRmsPropConfig {
    /// Decay of the running mean of squared gradients, `ρ`.
    #[config(default = 0.9)]
    pub rho: f64,
    /// Added to `√s` before dividing, `ε`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// Gradient clipping, applied before the update.
    pub grad_clipping: Option<GradientClippingConfig>,
}

impl FastRmsPropConfig {
    /// The optimizer, ready for `ModuleOptimizer::step`.
    ///
    /// # Panics
    /// If `rho` is outside `[0, 1)` or `epsilon` is not positive and finite.
    pub fn init(&self) -> ModuleOptimizer {
        assert!(
            (0.0..1.0).contains(&self.rho),
            "FastRmsPropConfig.rho must be in [0, 1), got {}",
            self.rho
        );
        assert!(
            self.epsilon > 0.0 && self.epsilon.is_finite(),
            "FastRmsPropConfig.epsilon must be positive and finite, got {}",
            self.epsilon
        );
        let optim = ModuleOptimizer::from(FastRmsProp {
            rho: self.rho,
            epsilon: self.epsilon,
        });
        match &self.grad_clipping {
            Some(clip) => optim.with_grad_clipping(clip.init()),
            None => optim,
        }
    }
}

/// RMSProp without momentum, fused for small parameters; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct FastRmsProp {
    rho: f64,
    epsilon: f64,
}

impl Optimizer for FastRmsProp {
    type State<const D: usize> = SquareAvgState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let square_avg = state
            .map(|s| s.square_avg)
            .unwrap_or_else(|| grad.zeros_like());
        let host = param.shape().num_elements() <= HOST_MAX_LEN
            && matches!(param.dtype(), DType::F32 | DType::F64)
            && fused::on_flex(&param.device());
        let (param, square_avg) = if host {
            self.step_host(lr, param, grad, square_avg)
        } else {
            self.step_tensors(lr, param, grad, square_avg)
        };
        (param, Some(SquareAvgState { square_avg }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.square_avg = state.square_avg.to_device(device);
        state
    }
}

impl FastRmsProp {
    fn step_tensors<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        square_avg: Tensor<D>,
    ) -> (Tensor<D>, Tensor<D>) {
        let square_avg = square_avg
            .mul_scalar(self.rho)
            .add(grad.clone().square().mul_scalar(1.0 - self.rho));
        let step = grad.div(square_avg.clone().sqrt().add_scalar(self.epsilon));
        (param.sub(step.mul_scalar(lr)), square_avg)
    }

    fn step_host<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        square_avg: Tensor<D>,
    ) -> (Tensor<D>, Tensor<D>) {
        let device = param.device();
        let [p, g, s] = [param, grad, square_avg].map(Tensor::into_data);
        let (p, s) = match p.dtype() {
            DType::F64 => self.update::<f64>(lr, p, g, s),
            _ => self.update::<f32>(lr, p, g, s),
        };
        (Tensor::from_data(p, &device), Tensor::from_data(s, &device))
    }

    /// The update on host values, in the parameter's float type.
    fn update<F>(
        &self,
        lr: LearningRate,
        p: TensorData,
        g: TensorData,
        s: TensorData,
    ) -> (TensorData, TensorData)
    where
        F: num_traits::Float + burn::tensor::Element,
    {
        let shape = p.shape().clone();
        let as_vec = |d: TensorData| d.convert::<F>().try_into_vec::<F>().expect("float data");
        let (mut p, g, mut s) = (as_vec(p), as_vec(g), as_vec(s));
        let cast = |v: f64| F::from(v).expect("a finite hyperparameter");
        let (rho, rest, eps, lr) = (
            cast(self.rho),
            cast(1.0 - self.rho),
            cast(self.epsilon),
            cast(lr),
        );
        for ((p, &g), s) in p.iter_mut().zip(&g).zip(s.iter_mut()) {
            *s = rho * *s + g * g * rest;
            *p = *p - lr * (g / (s.sqrt() + eps));
        }
        (TensorData::new(p, shape.clone()), TensorData::new(s, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;

    /// A one-parameter module, to drive the optimizer through `ModuleOptimizer`.
    #[derive(Module, Debug)]
    struct One {
        w: Param<Tensor<2>>,
    }

    /// Three steps on `loss = Σ c ⊙ w` (gradient `c`, the same each step) against the
    /// update written out by hand, on the host path (small) and the tensor path (large).
    fn matches_hand_computed(len: usize) {
        let device = Device::default().autodiff();
        let c: Vec<f64> = (0..len).map(|i| (i % 7) as f64 - 3.0).collect();
        let w0: Vec<f64> = (0..len).map(|i| (i % 5) as f64 * 0.1).collect();
        let init =
            |v: &[f64]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, len]), &device);
        let mut module = One {
            w: Param::from_tensor(init(&w0)),
        };
        let mut optim = FastRmsPropConfig::new().init();
        let (mut w, mut s) = (w0.clone(), vec![0.0; len]);
        for _ in 0..3 {
            let loss = module.w.val().mul(init(&c)).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &module);
            module = optim.step(0.01, module, grads);
            for i in 0..len {
                s[i] = 0.9 * s[i] + 0.1 * c[i] * c[i];
                w[i] -= 0.01 * c[i] / (s[i].sqrt() + 1e-7);
            }
        }
        let got = module
            .w
            .val()
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .unwrap();
        for i in 0..len {
            assert!(
                (got[i] - w[i]).abs() < 1e-5,
                "w[{i}] = {} vs {}",
                got[i],
                w[i]
            );
        }
    }

    #[test]
    fn small_parameters_update_like_the_formula() {
        matches_hand_computed(10);
    }

    #[test]
    fn large_parameters_update_like_the_formula() {
        matches_hand_computed(HOST_MAX_LEN + 5);
    }

    #[test]
    #[should_panic(expected = "FastRmsPropConfig.rho must be in [0, 1), got 1")]
    fn invalid_rho_is_refused() {
        FastRmsPropConfig::new().with_rho(1.0).init();
    }
}
