//! RMSProp and Adam with a one-pass update for small parameters on the CPU.
//!
//! On the static toy's 1000 weights, Burn's `ModuleOptimizer` spends about 20 µs a step, a third
//! of the whole training step: some ten tensor ops per parameter plus the bookkeeping of a
//! general optimizer (per-parameter paths, type-erased states, groups). [`FastRmsProp`] and
//! [`FastAdam`] compute the same updates in one loop over host memory, with their state kept on
//! the host, when a parameter is small and lives on the flex backend; elsewhere they use tensor
//! ops on the parameter's device:
//!
//! - RMSProp (Keras's variant, no momentum or centring):
//!   `s ← ρ·s + (1 − ρ)·g²`, `θ ← θ − lr · g / (√s + ε)` (`s₀ = 0`);
//! - Adam: `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
//!   `θ ← θ − lr · m̂ / (√v̂ + ε)` with `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)`, as Burn's and
//!   PyTorch's `Adam`.
//!
//! Both update each element alone, so a [`Population`](crate::Population)'s members keep
//! separate states, and [`retain_members`](FastAdam::retain_members) drops the states of members
//! a population no longer trains. They are for single-device training and have no record
//! (save/load) of their state outside the experiments' training checkpoints; Burn's
//! `ModuleOptimizer` remains the general choice.

use std::collections::HashMap;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::{GradientClipping, GradientClippingConfig};
use burn::tensor::{DType, Element, Tensor, TensorData};
use num_traits::Float;

use crate::ConfigError;

/// Largest parameter (in elements) updated through host memory; above it, tensor ops win.
const HOST_MAX_LEN: usize = 1 << 16;

/// The most state values per element a [`Rule`] keeps (Adam's two).
const MAX_SLOTS: usize = 2;

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

/// Configuration of [`FastAdam`].
#[derive(Config, Debug)]
pub struct FastAdamConfig {
    /// Decay of the running mean of gradients, `β₁`.
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Decay of the running mean of squared gradients, `β₂`.
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Added to `√v̂` before dividing, `ε` (PyTorch's default; Keras uses 1e-7).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// Gradient clipping, applied to each gradient before the update.
    pub grad_clipping: Option<GradientClippingConfig>,
}

/// Refuses a decay outside `[0, 1)` or an `ε` that is not finite and positive.
fn check(
    config: &'static str,
    decays: &[(&'static str, f64)],
    eps: f64,
) -> Result<(), ConfigError> {
    for &(field, decay) in decays {
        if !(0.0..1.0).contains(&decay) {
            let reason = format!("must be in [0, 1), got {decay}");
            return Err(ConfigError::new(config, field, reason));
        }
    }
    ConfigError::check_positive(config, "epsilon", eps)
}

impl FastRmsPropConfig {
    /// Checks the config: `rho` in `[0, 1)`, `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check("FastRmsPropConfig", &[("rho", self.rho)], self.epsilon)
    }

    /// The optimizer, with no state yet.
    ///
    /// # Panics
    /// On an invalid config, with the message of [`FastRmsPropConfig::validate`].
    pub fn init(&self) -> FastRmsProp {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let rule = RmsPropRule {
            rho: self.rho,
            epsilon: self.epsilon,
        };
        FastRmsProp(Elementwise::new(rule, &self.grad_clipping))
    }
}

impl FastAdamConfig {
    /// Checks the config: `beta_1` and `beta_2` in `[0, 1)`, `epsilon` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let decays = [("beta_1", self.beta_1), ("beta_2", self.beta_2)];
        check("FastAdamConfig", &decays, self.epsilon)
    }

    /// The optimizer, with no state yet.
    ///
    /// # Panics
    /// On an invalid config, with the message of [`FastAdamConfig::validate`].
    pub fn init(&self) -> FastAdam {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let rule = AdamRule {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
        };
        FastAdam(Elementwise::new(rule, &self.grad_clipping))
    }
}

/// The public optimizers: each an [`Elementwise`] update with its rule.
macro_rules! fast_optimizer {
    ($(#[$doc:meta])* $name:ident($rule:ty)) => {
        $(#[$doc])*
        pub struct $name(Elementwise<$rule>);

        impl $name {
            /// Updates every parameter of `module` that has a gradient in `grads` (computed on
            /// `module`'s autodiff device, as for `ModuleOptimizer::step`) with learning rate
            /// `lr`.
            pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
                self.0.step(lr, module, grads)
            }

            /// Keeps the state of the members of a population of `members` where `keep` is
            /// set, in order, for the population
            /// [`Population::retain`](crate::Population::retain) leaves.
            ///
            /// # Panics
            /// If `keep` does not have one entry per member.
            pub fn retain_members(&mut self, keep: &[bool], members: usize) {
                self.0.retain_members(keep, members)
            }

            /// One step of parameters held on the host, each `(id, values, gradient)`, as
            /// [`step`](Self::step) would make it; `false` (nothing updated) when this
            /// optimizer clips gradients, which that path does not.
            #[doc(hidden)]
            pub fn step_host<F: HostFloat>(
                &mut self,
                lr: f64,
                params: &mut [(ParamId, &mut [F], &[F])],
            ) -> bool {
                self.0.step_host(lr, params)
            }

            /// Its state for `module`'s parameters, for a training checkpoint.
            pub fn export<M: Module>(&self, module: &M) -> OptimizerState {
                self.0.export(module)
            }

            /// Takes up `state`, which [`export`](Self::export) gave for a module of the
            /// same parameters as `module` (whose ids it keeps from here on).
            pub fn import<M: Module>(
                &mut self,
                module: &M,
                state: &OptimizerState,
            ) -> Result<(), String> {
                self.0.import(module, state)
            }
        }
    };
}

fast_optimizer!(
    /// RMSProp without momentum, fused for small parameters; see the [module docs](self).
    FastRmsProp(RmsPropRule)
);

fast_optimizer!(
    /// Adam, fused for small parameters; see the [module docs](self).
    FastAdam(AdamRule)
);

/// An optimizer that updates every element of a parameter alone from its gradient and the
/// [`Rule::SLOTS`] state values of its own ([`FastRmsProp`], [`FastAdam`]).
pub(crate) struct Elementwise<R> {
    rule: R,
    clipping: Option<GradientClipping>,
    state: HashMap<ParamId, State>,
    /// Steps taken (Adam's bias correction).
    steps: i32,
}

/// An element-wise update: the state slots it keeps per element and the update itself, on host
/// values or on tensors.
pub(crate) trait Rule {
    /// State values per element (at most [`MAX_SLOTS`]).
    const SLOTS: usize;

    /// What the update at step `t` (from 1) shares across elements, computed once per step.
    type Step: Copy;

    /// The shared part of the update at step `t`.
    fn step(&self, t: i32) -> Self::Step;

    /// Updates one element `p` from its gradient `g` and its slots, at step `step`.
    fn host<F: Float>(&self, lr: F, step: Self::Step, p: &mut F, g: F, slots: &mut [F]);

    /// The same for a whole (flattened) parameter, with tensor ops.
    fn tensors(
        &self,
        lr: f64,
        t: i32,
        p: Tensor<1>,
        g: Tensor<1>,
        slots: &mut [Tensor<1>],
    ) -> Tensor<1>;
}

/// RMSProp's rule (see the [module docs](self)).
pub(crate) struct RmsPropRule {
    rho: f64,
    epsilon: f64,
}

impl Rule for RmsPropRule {
    const SLOTS: usize = 1;
    type Step = ();

    fn step(&self, _: i32) {}

    #[inline(always)]
    fn host<F: Float>(&self, lr: F, _: (), p: &mut F, g: F, slots: &mut [F]) {
        let cast = |v: f64| F::from(v).expect("a finite hyperparameter");
        let s = &mut slots[0];
        *s = cast(self.rho) * *s + g * g * cast(1.0 - self.rho);
        *p = *p - lr * (g / (s.sqrt() + cast(self.epsilon)));
    }

    fn tensors(
        &self,
        lr: f64,
        _: i32,
        p: Tensor<1>,
        g: Tensor<1>,
        slots: &mut [Tensor<1>],
    ) -> Tensor<1> {
        let s = slots[0]
            .clone()
            .mul_scalar(self.rho)
            .add(g.clone().square().mul_scalar(1.0 - self.rho));
        slots[0] = s.clone();
        p.sub(g.div(s.sqrt().add_scalar(self.epsilon)).mul_scalar(lr))
    }
}

/// Adam's rule (see the [module docs](self)).
pub(crate) struct AdamRule {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
}

impl AdamRule {
    /// `(√(1 − β₂ᵗ)/(1 − β₁ᵗ), ε·√(1 − β₂ᵗ))`: the bias corrections folded into one factor and
    /// the denominator's `ε`, as Burn's Adam applies them (`m̂/(√v̂ + ε)` rearranged).
    fn corrections(&self, t: i32) -> (f64, f64) {
        let root = (1.0 - self.beta_2.powi(t)).sqrt();
        (root / (1.0 - self.beta_1.powi(t)), self.epsilon * root)
    }
}

impl Rule for AdamRule {
    const SLOTS: usize = 2;
    /// The bias corrections: two powers, a square root and a division, once per step rather
    /// than per element.
    type Step = (f64, f64);

    fn step(&self, t: i32) -> (f64, f64) {
        self.corrections(t)
    }

    #[inline(always)]
    fn host<F: Float>(&self, lr: F, step: (f64, f64), p: &mut F, g: F, slots: &mut [F]) {
        let cast = |v: f64| F::from(v).expect("a finite hyperparameter");
        let (factor, eps) = step;
        let (b1, b2) = (cast(self.beta_1), cast(self.beta_2));
        slots[0] = b1 * slots[0] + (F::one() - b1) * g;
        slots[1] = b2 * slots[1] + (F::one() - b2) * g * g;
        *p = *p - lr * (slots[0] * cast(factor) / (slots[1].sqrt() + cast(eps)));
    }

    fn tensors(
        &self,
        lr: f64,
        t: i32,
        p: Tensor<1>,
        g: Tensor<1>,
        slots: &mut [Tensor<1>],
    ) -> Tensor<1> {
        let (factor, eps) = self.corrections(t);
        let (b1, b2) = (self.beta_1, self.beta_2);
        slots[0] = slots[0]
            .clone()
            .mul_scalar(b1)
            .add(g.clone().mul_scalar(1.0 - b1));
        slots[1] = slots[1]
            .clone()
            .mul_scalar(b2)
            .add(g.square().mul_scalar(1.0 - b2));
        let step = slots[0]
            .clone()
            .mul_scalar(factor)
            .div(slots[1].clone().sqrt().add_scalar(eps));
        p.sub(step.mul_scalar(lr))
    }
}

/// An optimizer's state, as a checkpoint keeps it: the steps taken and, for each float
/// parameter in visiting order, its state slots (`None` before its first update), widened to
/// f64 (exactly, from f32).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// The optimizer steps taken.
    pub steps: i32,
    /// Each float parameter's state slots in visiting order (Adam's two moments, RMSProp's
    /// one), `None` before its first update.
    pub params: Vec<Option<Vec<Vec<f64>>>>,
}

/// Each float parameter of `module`, in visiting order: its id and its value (off autodiff).
fn parameters<M: Module>(module: &M) -> Vec<(ParamId, Tensor<1>)> {
    struct Collect(Vec<(ParamId, Tensor<1>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().inner();
            let n = t.shape().num_elements();
            self.0.push((param.id, t.reshape([n])));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// The state slots of one parameter, flattened.
#[doc(hidden)]
pub enum State {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
    Tensor(Vec<Tensor<1>>),
}

impl<R: Rule> Elementwise<R> {
    fn new(rule: R, clipping: &Option<GradientClippingConfig>) -> Self {
        Self {
            rule,
            clipping: clipping.as_ref().map(GradientClippingConfig::init),
            state: HashMap::new(),
            steps: 0,
        }
    }

    fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.steps += 1;
        module.map(&mut Updater {
            optim: self,
            grads,
            lr,
        })
    }

    fn retain_members(&mut self, keep: &[bool], members: usize) {
        assert_eq!(keep.len(), members, "one flag per member");
        fn blocks<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            let per = v.len() / keep.len();
            let kept = v.chunks(per).zip(keep).filter(|(_, k)| **k);
            kept.flat_map(|(block, _)| block.to_vec()).collect()
        }
        let index: Vec<i64> = (0..members as i64).filter(|&k| keep[k as usize]).collect();
        for state in self.state.values_mut() {
            match state {
                State::F32(slots) => slots.iter_mut().for_each(|s| *s = blocks(s, keep)),
                State::F64(slots) => slots.iter_mut().for_each(|s| *s = blocks(s, keep)),
                State::Tensor(slots) => {
                    for s in slots.iter_mut() {
                        let n = s.dims()[0];
                        let device = s.device();
                        let idx = Tensor::<1, burn::tensor::Int>::from_data(
                            TensorData::new(index.clone(), [index.len()]),
                            &device,
                        );
                        let per = n / members;
                        *s = s
                            .clone()
                            .reshape([members, per])
                            .select(0, idx)
                            .reshape([index.len() * per]);
                    }
                }
            }
        }
    }

    fn export<M: Module>(&self, module: &M) -> OptimizerState {
        let widen = |v: &Vec<Tensor<1>>| -> Vec<Vec<f64>> {
            let host = |t: &Tensor<1>| t.clone().into_data().convert::<f64>().try_to_vec();
            v.iter().map(|t| host(t).expect("float state")).collect()
        };
        let slots = |id: &ParamId| match self.state.get(id)? {
            State::F32(v) => Some(
                v.iter()
                    .map(|s| s.iter().map(|&x| x as f64).collect())
                    .collect(),
            ),
            State::F64(v) => Some(v.clone()),
            State::Tensor(v) => Some(widen(v)),
        };
        OptimizerState {
            steps: self.steps,
            params: parameters(module).iter().map(|(id, _)| slots(id)).collect(),
        }
    }

    fn import<M: Module>(&mut self, module: &M, state: &OptimizerState) -> Result<(), String> {
        let params = parameters(module);
        if params.len() != state.params.len() {
            let (got, want) = (state.params.len(), params.len());
            return Err(format!(
                "optimizer state of {got} parameters for a module of {want}"
            ));
        }
        let mut fresh = HashMap::new();
        for ((id, value), slots) in params.into_iter().zip(&state.params) {
            let Some(slots) = slots else { continue };
            let n = value.dims()[0];
            if slots.len() != R::SLOTS || slots.iter().any(|s| s.len() != n) {
                return Err(format!(
                    "optimizer state does not fit a parameter of {n} values"
                ));
            }
            let host = n <= HOST_MAX_LEN && crate::backend::on_host(&value.device());
            let restored = match value.dtype() {
                DType::F32 if host => State::F32(
                    slots
                        .iter()
                        .map(|s| s.iter().map(|&x| x as f32).collect())
                        .collect(),
                ),
                DType::F64 if host => State::F64(slots.clone()),
                dtype => {
                    let device = value.device();
                    let tensor = |s: &Vec<f64>| {
                        let data = TensorData::new(s.clone(), [n]).convert_dtype(dtype);
                        Tensor::<1>::from_data(data, &device)
                    };
                    State::Tensor(slots.iter().map(tensor).collect())
                }
            };
            fresh.insert(id, restored);
        }
        (self.state, self.steps) = (fresh, state.steps);
        Ok(())
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
    fn step_host<F: HostFloat>(
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

/// f32 and f64, the float types with a host state.
#[doc(hidden)]
pub trait HostFloat: Float + Element {
    fn wrap(slots: Vec<Vec<Self>>) -> State;
    fn slots(state: &mut State) -> Option<&mut Vec<Vec<Self>>>;
}

/// `HostFloat` for a float type and the `State` variant that holds it.
macro_rules! host_float {
    ($float:ty, $variant:ident) => {
        impl HostFloat for $float {
            fn wrap(slots: Vec<Vec<$float>>) -> State {
                State::$variant(slots)
            }

            fn slots(state: &mut State) -> Option<&mut Vec<Vec<$float>>> {
                match state {
                    State::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

host_float!(f32, F32);
host_float!(f64, F64);

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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// A two-parameter module, to drive the optimizers.
    #[derive(Module, Debug)]
    struct Two {
        w: Param<Tensor<2>>,
        frozen: Param<Tensor<1>>,
    }

    /// Three steps on `loss = Σ c ⊙ w` (gradient `c`, the same each step) against the update
    /// written out by hand in f64, `update(w, g, state, t)`.
    fn matches_hand_computed<R: Rule>(
        mut optim: Elementwise<R>,
        len: usize,
        update: impl Fn(&mut f64, f64, &mut [f64; 2], i32),
    ) {
        let device = Device::default().autodiff();
        let c: Vec<f64> = (0..len).map(|i| (i % 7) as f64 - 3.0).collect();
        let w0: Vec<f64> = (0..len).map(|i| (i % 5) as f64 * 0.1).collect();
        let init =
            |v: &[f64]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, len]), &device);
        let mut module = Two {
            w: Param::from_tensor(init(&w0)),
            frozen: Param::from_tensor(Tensor::ones([3], &device)),
        };
        let (mut w, mut state) = (w0.clone(), vec![[0.0; 2]; len]);
        for t in 1..=3 {
            let loss = module.w.val().mul(init(&c)).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &module);
            module = optim.step(0.01, module, grads);
            for i in 0..len {
                update(&mut w[i], c[i], &mut state[i], t);
            }
        }
        let got = module.w.val().into_data().convert::<f64>();
        let got = got.as_slice::<f64>().unwrap();
        // f32 against the f64 formula: each of the 3 updates rounds |w| < 1 a few times (a
        // few 6e-8), and the step (≤ 0.01·√10 for RMSProp, ≤ 0.01 for Adam) carries its own
        // few-ulp error: < 1e-6 in all.
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

    fn rmsprop(w: &mut f64, g: f64, s: &mut [f64; 2], _: i32) {
        s[0] = 0.9 * s[0] + 0.1 * g * g;
        *w -= 0.01 * g / (s[0].sqrt() + 1e-7);
    }

    fn adam(w: &mut f64, g: f64, s: &mut [f64; 2], t: i32) {
        s[0] = 0.9 * s[0] + 0.1 * g;
        s[1] = 0.999 * s[1] + 0.001 * g * g;
        let (m_hat, v_hat) = (
            s[0] / (1.0 - 0.9f64.powi(t)),
            s[1] / (1.0 - 0.999f64.powi(t)),
        );
        *w -= 0.01 * m_hat / (v_hat.sqrt() + 1e-8);
    }

    #[test]
    fn small_parameters_update_like_the_formulas() {
        matches_hand_computed(FastRmsPropConfig::new().init().0, 10, rmsprop);
        matches_hand_computed(FastAdamConfig::new().init().0, 10, adam);
    }

    #[test]
    fn large_parameters_update_like_the_formulas() {
        matches_hand_computed(FastRmsPropConfig::new().init().0, HOST_MAX_LEN + 5, rmsprop);
        matches_hand_computed(FastAdamConfig::new().init().0, HOST_MAX_LEN + 5, adam);
    }

    #[test]
    fn retained_members_keep_their_own_state() {
        // Three members of one 2-element parameter, each with its own gradient; after a step,
        // dropping member 1 and stepping again must move members 0 and 2 exactly as if the
        // population had always been those two.
        let device = Device::default().autodiff();
        let run = |members: &[usize], drop_after: Option<usize>| {
            let mut optim = FastAdamConfig::new().init();
            let values = |ms: &[usize]| -> Vec<f64> {
                ms.iter()
                    .flat_map(|&m| [m as f64, -(m as f64) * 0.5])
                    .collect()
            };
            let mut ms = members.to_vec();
            let mut module = Two {
                w: Param::from_tensor(Tensor::from_data(
                    TensorData::new(values(&ms), [ms.len(), 2]),
                    &device,
                )),
                frozen: Param::from_tensor(Tensor::ones([1], &device)),
            };
            for step in 0..3 {
                if Some(step) == drop_after {
                    let keep: Vec<bool> = ms.iter().map(|&m| m != 1).collect();
                    optim.retain_members(&keep, ms.len());
                    let rows: Vec<i64> =
                        (0..ms.len() as i64).filter(|&k| keep[k as usize]).collect();
                    ms.retain(|&m| m != 1);
                    // As `Population::retain` does: the same parameter id, fewer rows.
                    module.w = module.w.map(|t| {
                        let idx = Tensor::<1, burn::tensor::Int>::from_data(
                            TensorData::new(rows, [2]),
                            &t.device(),
                        );
                        Tensor::from_inner(t.inner().select(0, idx)).require_grad()
                    });
                }
                let c = Tensor::<2>::from_data(
                    TensorData::new(values(&ms).iter().map(|v| v + 1.0).collect(), [ms.len(), 2]),
                    &device,
                );
                let loss = module.w.val().mul(c).sum();
                let grads = GradientsParams::from_grads(loss.backward(), &module);
                module = optim.step(0.01, module, grads);
            }
            module.w.val().into_data()
        };
        // The kept members' states carry over, so members 0 and 2 end as they would have
        // without member 1 at all, whenever it left: the same bits.
        let without = run(&[0, 2], None);
        assert_eq!(run(&[0, 1, 2], Some(1)), without);
        assert_eq!(run(&[0, 1, 2], Some(2)), without);
    }

    #[test]
    fn invalid_configs_are_refused_by_field() {
        assert_eq!(
            FastRmsPropConfig::new()
                .with_rho(1.0)
                .validate()
                .unwrap_err()
                .to_string(),
            "FastRmsPropConfig.rho must be in [0, 1), got 1"
        );
        assert_eq!(
            FastAdamConfig::new()
                .with_epsilon(0.0)
                .validate()
                .unwrap_err()
                .field(),
            "epsilon"
        );
    }

    #[test]
    #[should_panic(expected = "FastAdamConfig.beta_2 must be in [0, 1), got 1")]
    fn init_panics_with_the_validation_message() {
        FastAdamConfig::new().with_beta_2(1.0).init();
    }
}
