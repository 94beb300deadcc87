//! RMSProp with a one-pass update for small parameters on the CPU.
//!
//! On the static toy's 1000 weights, Burn's `ModuleOptimizer` with its `RmsProp` spends about
//! 20 µs a step, a third of the whole training step: some ten tensor ops per parameter plus the
//! bookkeeping of a general optimizer (per-parameter paths, type-erased states, groups).
//! [`FastRmsProp`] computes the same update,
//!
//! `s ← ρ·s + (1 − ρ)·g²`, `θ ← θ − lr · g / (√s + ε)` (`s₀ = 0`),
//!
//! in one loop over host memory, with the running mean `s` kept on the host, when a parameter
//! is small and lives on the flex backend; elsewhere it uses tensor ops on the parameter's
//! device. It is RMSProp without momentum or centring, the variant Keras uses; with
//! `ρ = 0.9, ε = 1e-7` it is Keras's default. It is for single-device training and has no
//! record (save/load) of its state; Burn's `ModuleOptimizer` remains the general choice.

use std::collections::HashMap;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::{GradientClipping, GradientClippingConfig};
use burn::tensor::{DType, Element, Tensor, TensorData};
use num_traits::Float;

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
    /// Gradient clipping, applied to each gradient before the update.
    pub grad_clipping: Option<GradientClippingConfig>,
}

impl FastRmsPropConfig {
    /// The optimizer, with no state yet.
    ///
    /// # Panics
    /// If `rho` is outside `[0, 1)` or `epsilon` is not positive and finite.
    pub fn init(&self) -> FastRmsProp {
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
        FastRmsProp {
            rho: self.rho,
            epsilon: self.epsilon,
            clipping: self
                .grad_clipping
                .as_ref()
                .map(GradientClippingConfig::init),
            state: HashMap::new(),
        }
    }
}

/// RMSProp without momentum, fused for small parameters; see the [module docs](self).
pub struct FastRmsProp {
    rho: f64,
    epsilon: f64,
    clipping: Option<GradientClipping>,
    state: HashMap<ParamId, SquareAvg>,
}

/// The running mean of squared gradients of one parameter, flattened.
enum SquareAvg {
    F32(Vec<f32>),
    F64(Vec<f64>),
    // Boxed: a tensor handle is ten times the size of a `Vec`.
    Tensor(Box<Tensor<1>>),
}

impl FastRmsProp {
    /// Updates every parameter of `module` that has a gradient in `grads` (computed on
    /// `module`'s autodiff device, as for `ModuleOptimizer::step`) with learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        module.map(&mut Updater {
            optim: self,
            grads,
            lr,
        })
    }

    /// `param − lr·g/(√s + ε)` for one parameter (on the inner, non-autodiff device).
    fn update<const D: usize>(
        &mut self,
        id: ParamId,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
    ) -> Tensor<D> {
        let n = param.shape().num_elements();
        let host = n <= HOST_MAX_LEN && crate::backend::on_host(&param.device());
        match param.dtype() {
            DType::F32 if host => self.update_host::<f32, D>(id, lr, param, grad),
            DType::F64 if host => self.update_host::<f64, D>(id, lr, param, grad),
            _ => self.update_tensors(id, lr, param, grad),
        }
    }

    fn update_host<F: HostFloat, const D: usize>(
        &mut self,
        id: ParamId,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
    ) -> Tensor<D> {
        let device = param.device();
        let (p, g) = (param.into_data(), grad.into_data());
        let shape = p.shape().clone();
        let values = |d: TensorData| d.convert::<F>().try_into_vec::<F>().expect("float data");
        let (mut p, g) = (values(p), values(g));
        let slot = self
            .state
            .entry(id)
            .or_insert_with(|| F::wrap(vec![F::zero(); p.len()]));
        if F::slot(slot).is_none_or(|s| s.len() != p.len()) {
            *slot = F::wrap(vec![F::zero(); p.len()]);
        }
        let s = F::slot(slot).expect("set above");
        let cast = |v: f64| F::from(v).expect("a finite hyperparameter");
        let (rho, rest) = (cast(self.rho), cast(1.0 - self.rho));
        let (eps, lr) = (cast(self.epsilon), cast(lr));
        for ((p, &g), s) in p.iter_mut().zip(&g).zip(s.iter_mut()) {
            *s = rho * *s + g * g * rest;
            *p = *p - lr * (g / (s.sqrt() + eps));
        }
        Tensor::from_data(TensorData::new(p, shape), &device)
    }

    fn update_tensors<const D: usize>(
        &mut self,
        id: ParamId,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
    ) -> Tensor<D> {
        let (shape, n) = (param.shape(), param.shape().num_elements());
        let g = grad.reshape([n]);
        let s = match self.state.remove(&id) {
            Some(SquareAvg::Tensor(s)) if s.dims() == [n] => *s,
            _ => g.zeros_like(),
        };
        let s = s
            .mul_scalar(self.rho)
            .add(g.clone().square().mul_scalar(1.0 - self.rho));
        let step = g
            .div(s.clone().sqrt().add_scalar(self.epsilon))
            .mul_scalar(lr);
        self.state.insert(id, SquareAvg::Tensor(Box::new(s)));
        param.sub(step.reshape(shape))
    }
}

/// f32 and f64, the float types with a host state.
trait HostFloat: Float + Element {
    fn wrap(values: Vec<Self>) -> SquareAvg;
    fn slot(state: &mut SquareAvg) -> Option<&mut Vec<Self>>;
}

/// `HostFloat` for a float type and the `SquareAvg` variant that holds it.
macro_rules! host_float {
    ($float:ty, $variant:ident) => {
        impl HostFloat for $float {
            fn wrap(values: Vec<$float>) -> SquareAvg {
                SquareAvg::$variant(values)
            }

            fn slot(state: &mut SquareAvg) -> Option<&mut Vec<$float>> {
                match state {
                    SquareAvg::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

host_float!(f32, F32);
host_float!(f64, F64);

/// Walks a module, replacing each parameter that has a gradient by its update.
struct Updater<'a> {
    optim: &'a mut FastRmsProp,
    grads: GradientsParams,
    lr: f64,
}

impl ModuleMapper for Updater<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let grad = match &self.optim.clipping {
            Some(clipping) => clipping.clip_gradient(grad),
            None => grad,
        };
        let require_grad = tensor.is_require_grad();
        let updated = Tensor::from_inner(self.optim.update(id, self.lr, tensor.inner(), grad));
        let updated = if require_grad {
            updated.require_grad()
        } else {
            updated
        };
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// A two-parameter module, to drive the optimizer.
    #[derive(Module, Debug)]
    struct Two {
        w: Param<Tensor<2>>,
        frozen: Param<Tensor<1>>,
    }

    /// Three steps on `loss = Σ c ⊙ w` (gradient `c`, the same each step) against the
    /// update written out by hand.
    fn matches_hand_computed(len: usize) {
        let device = Device::default().autodiff();
        let c: Vec<f64> = (0..len).map(|i| (i % 7) as f64 - 3.0).collect();
        let w0: Vec<f64> = (0..len).map(|i| (i % 5) as f64 * 0.1).collect();
        let init =
            |v: &[f64]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, len]), &device);
        let mut module = Two {
            w: Param::from_tensor(init(&w0)),
            frozen: Param::from_tensor(Tensor::ones([3], &device)),
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
        let got = module.w.val().into_data().convert::<f64>();
        let got = got.as_slice::<f64>().unwrap();
        // f32 against the f64 formula: each of the 3 updates rounds |w| < 1 a few times (a few
        // 6e-8), and the step lr·g/√s ≤ 0.01·√10 carries its own few-ulp error: < 1e-6.
        for i in 0..len {
            assert!(
                (got[i] - w[i]).abs() < 1e-5,
                "w[{i}] = {} vs {}",
                got[i],
                w[i]
            );
        }
        // No gradient, no update; and the updated parameter still tracks gradients.
        assert_eq!(
            module.frozen.val().into_data(),
            Tensor::<1>::ones([3], &device).into_data()
        );
        assert!(module.w.val().is_require_grad());
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
    fn gradient_clipping_applies_before_the_update() {
        // With the gradient clipped to ±0.5, the first step is lr·g/(√(0.1·g²) + ε) = lr·√10
        // whatever the size of the raw gradient.
        let device = Device::default().autodiff();
        let mut module = Two {
            w: Param::from_tensor(Tensor::zeros([1, 2], &device)),
            frozen: Param::from_tensor(Tensor::ones([3], &device)),
        };
        let mut optim = FastRmsPropConfig::new()
            .with_grad_clipping(Some(GradientClippingConfig::Value(0.5)))
            .init();
        let c = Tensor::<2>::from_floats([[100.0, -0.25]], &device);
        let grads = GradientsParams::from_grads(module.w.val().mul(c).sum().backward(), &module);
        module = optim.step(0.01, module, grads);
        let w = module.w.val().into_data().convert::<f64>();
        let w = w.as_slice::<f64>().unwrap();
        let expected = 0.01 * 10f64.sqrt();
        assert!(
            (w[0] + expected).abs() < 1e-5 && (w[1] - expected).abs() < 1e-5,
            "{w:?}"
        );
    }

    #[test]
    #[should_panic(expected = "FastRmsPropConfig.rho must be in [0, 1), got 1")]
    fn invalid_rho_is_refused() {
        FastRmsPropConfig::new().with_rho(1.0).init();
    }
}
