//! The configs of [`FastRmsProp`] and [`FastAdam`] and the element-wise update [`Rule`]s they
//! build: RMSProp's and Adam's, on host values or tensors.

use burn::config::Config;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::tensor::Tensor;
use num_traits::Float;

use super::{Elementwise, FastAdam, FastRmsProp};
use crate::ConfigError;

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

/// An element-wise update: the state slots it keeps per element and the update itself, on host
/// values or on tensors.
pub(crate) trait Rule {
    /// State values per element (at most [`MAX_SLOTS`](super::MAX_SLOTS)).
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

/// RMSProp's rule (see the [module docs](super)).
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

/// Adam's rule (see the [module docs](super)).
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
