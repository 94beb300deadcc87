//! One optimizer step: each parameter updated through host memory when small and on the host,
//! with tensor ops otherwise, as a module walk ([`Updater`]) or on host slices.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::tensor::{DType, Tensor, TensorData};

use super::rules::Rule;
use super::state::{HostFloat, State};
use super::{Elementwise, HOST_MAX_LEN, MAX_SLOTS};

impl<R: Rule> Elementwise<R> {
    pub(super) fn new(rule: R, clipping: &Option<GradientClippingConfig>) -> Self {
        Self {
            rule,
            clipping: clipping.as_ref().map(GradientClippingConfig::init),
            state: HashMap::new(),
            steps: 0,
        }
    }

    pub(super) fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.steps += 1;
        module.map(&mut Updater {
            optim: self,
            grads,
            lr,
        })
    }

    /// The update of one parameter (on the inner, non-autodiff device).
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
        self.update_slice(id, lr, &mut p, &g);
        Tensor::from_data(TensorData::new(p, shape), &device)
    }

    /// One step's update of a parameter held on the host as `p`, from its gradient `g`.
    fn update_slice<F: HostFloat>(&mut self, id: ParamId, lr: f64, p: &mut [F], g: &[F]) {
        let fresh = || F::wrap(vec![vec![F::zero(); p.len()]; R::SLOTS]);
        let state = self.state.entry(id).or_insert_with(fresh);
        if F::slots(state).is_none_or(|s| s[0].len() != p.len()) {
            *state = fresh();
        }
        let slots = F::slots(state).expect("set above");
        let (lr, t) = (F::from(lr).expect("a finite learning rate"), self.steps);
        const {
            assert!(
                R::SLOTS <= MAX_SLOTS,
                "a rule keeps at most MAX_SLOTS values"
            )
        };
        let mut local = [F::zero(); MAX_SLOTS];
        let step = self.rule.step(t);
        for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
            for (l, s) in local.iter_mut().zip(slots.iter()) {
                *l = s[i];
            }
            self.rule.host(lr, step, p, g, &mut local[..R::SLOTS]);
            for (l, s) in local.iter().zip(slots.iter_mut()) {
                s[i] = *l;
            }
        }
    }

    /// One step of parameters held on the host, each `(id, values, gradient)`: the update
    /// [`step`](Self::step) makes of the same values from tensors, on the same state. `false`
    /// (and nothing updated) where `step` would do more than that rule: clip gradients.
    pub(super) fn step_host<F: HostFloat>(
        &mut self,
        lr: f64,
        params: &mut [(ParamId, &mut [F], &[F])],
    ) -> bool {
        if self.clipping.is_some() {
            return false;
        }
        self.steps += 1;
        for (id, p, g) in params.iter_mut() {
            self.update_slice(*id, lr, p, g);
        }
        true
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
        let mut slots = match self.state.remove(&id) {
            Some(State::Tensor(s)) if s[0].dims() == [n] => s,
            _ => vec![g.zeros_like(); R::SLOTS],
        };
        let p = self
            .rule
            .tensors(lr, self.steps, param.reshape([n]), g, &mut slots);
        self.state.insert(id, State::Tensor(slots));
        p.reshape(shape)
    }
}

/// Walks a module, replacing each parameter that has a gradient by its update.
struct Updater<'a, R> {
    optim: &'a mut Elementwise<R>,
    grads: GradientsParams,
    lr: f64,
}

impl<R: Rule> ModuleMapper for Updater<'_, R> {
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
