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

use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClipping;

mod rules;
mod state;
mod update;

use rules::{AdamRule, RmsPropRule};
pub use rules::{FastAdamConfig, FastRmsPropConfig};
pub use state::{HostFloat, OptimizerState, State};

/// Largest parameter (in elements) updated through host memory; above it, tensor ops win.
const HOST_MAX_LEN: usize = 1 << 16;

/// The most state values per element a [`Rule`](rules::Rule) keeps (Adam's two).
const MAX_SLOTS: usize = 2;

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
/// [`Rule::SLOTS`](rules::Rule::SLOTS) state values of its own ([`FastRmsProp`], [`FastAdam`]).
pub(crate) struct Elementwise<R> {
    rule: R,
    clipping: Option<GradientClipping>,
    state: HashMap<ParamId, State>,
    /// Steps taken (Adam's bias correction).
    steps: i32,
}

#[cfg(test)]
mod tests {
    use super::rules::Rule;
    use super::*;
    use burn::module::Param;
    use burn::tensor::{Device, Tensor, TensorData};

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
