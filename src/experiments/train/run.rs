//! One run's progress through training: its evaluations, best checkpoint, divergence, early
//! stop and restarts.

use super::result::{Evaluation, RunResult};
use crate::experiments::config::TrainConfig;
use crate::experiments::task::TaskData;
use crate::inalu::StallDetector;

/// One run's progress through training.
pub(super) struct RunState {
    pub(super) history: Vec<Evaluation>,
    pub(super) best: Evaluation,
    solved_at: Option<usize>,
    diverged: Option<(usize, f64)>,
    stopped_at: Option<usize>,
    restarts: usize,
    pub(super) stall: Option<StallDetector>,
    /// The factor on `λ` (the training targets' variance when the config scales by it).
    pub(super) lambda_scale: f64,
    success_threshold: f64,
    valid_threshold: f64,
    /// The validation MSE the plateau is measured against, and evaluations since it was set.
    plateau_level: f64,
    stale: usize,
    steps: usize,
}

impl RunState {
    pub(super) fn new(data: &TaskData, config: &TrainConfig) -> Self {
        let targets = data.train_rows().unwrap_or(&data.valid);
        Self {
            history: Vec::new(),
            best: Evaluation {
                step: 0,
                train_mse: f64::INFINITY,
                valid_mse: f64::INFINITY,
                extrapolation_mse: f64::INFINITY,
            },
            solved_at: None,
            diverged: None,
            stopped_at: None,
            restarts: 0,
            stall: None,
            lambda_scale: match config.scale_regularizer {
                true => targets.target_variance(),
                false => 1.0,
            },
            success_threshold: data.success_threshold,
            valid_threshold: data.valid_threshold,
            plateau_level: f64::INFINITY,
            stale: 0,
            steps: 0,
        }
    }

    pub(super) fn active(&self) -> bool {
        self.diverged.is_none() && self.stopped_at.is_none()
    }

    /// Counts a step of an active run, and records its batch MSE for the stall rule.
    pub(super) fn after_step(&mut self, step: usize, mse: Option<f64>) {
        if !self.active() {
            return;
        }
        self.steps = step;
        if let (Some(stall), Some(mse)) = (self.stall.as_mut(), mse) {
            stall.record(mse);
        }
    }

    /// Stops the run at `step`, whose loss `loss` was not finite (once: a run the device saw
    /// diverge earlier keeps that step).
    pub(super) fn diverge(&mut self, step: usize, loss: f64) {
        if self.diverged.is_none() {
            (self.steps, self.diverged) = (step, Some((step, loss)));
        }
    }

    /// Records an evaluation; `true` when it is the best so far (the checkpoint to keep).
    pub(super) fn record(&mut self, m: Evaluation, early_stop: Option<(usize, usize)>) -> bool {
        self.history.push(m);
        if self.solved_at.is_none() && m.extrapolation_mse < self.success_threshold {
            self.solved_at = Some(m.step);
        }
        let better = m.valid_mse < self.best.valid_mse;
        if better {
            self.best = m;
        }
        // Evaluations since the validation MSE last fell by at least 1%.
        if m.valid_mse < 0.99 * self.plateau_level {
            (self.plateau_level, self.stale) = (m.valid_mse, 0);
        } else {
            self.stale += 1;
        }
        let converged = self.best.valid_mse <= self.valid_threshold;
        if let Some((after, patience)) = early_stop
            && m.step >= after
            && converged
            && self.stale >= patience
        {
            self.stopped_at = Some(m.step);
        }
        better
    }

    /// Whether the stall rule restarts the run after evaluation `count`.
    pub(super) fn stalled(&mut self, count: usize) -> bool {
        let stalled = self.active() && self.stall.as_mut().is_some_and(|s| s.stalled(count));
        self.restarts += stalled as usize;
        stalled
    }

    /// The run's result with its kept checkpoint's metrics (read-back and snapping to come).
    pub(super) fn result(&self, data: &TaskData, config: &TrainConfig, baseline: f64) -> RunResult {
        let best = self.best;
        RunResult {
            model: config.model,
            task: data.op,
            protocol: data.protocol,
            seed: data.seed,
            optimizer: config.optimizer,
            lr: config.lr,
            batch_size: config.batch_size,
            hidden: config.hidden,
            clip_norm: config.clip_norm,
            steps: self.steps,
            best_step: best.step,
            train_mse: best.train_mse,
            valid_mse: best.valid_mse,
            extrapolation_mse: best.extrapolation_mse,
            random_init_extrapolation_mse: baseline,
            normalized_extrapolation_error: 100.0 * best.extrapolation_mse / baseline,
            success_threshold: data.success_threshold,
            success: best.extrapolation_mse < data.success_threshold,
            solved_at_step: self.solved_at,
            formula: None,
            formula_error: None,
            sparsity_error: None,
            formula_mse_vs_network: None,
            formula_mse_vs_targets: None,
            diverged_step: self.diverged.map(|d| d.0),
            diverged_loss: self.diverged.map(|d| d.1),
            stopped_at_step: self.stopped_at,
            snap_kept: None,
            polish_kept: None,
            snapped_valid_mse: None,
            snapped_extrapolation_mse: None,
            snapped_success: None,
            restarts: self.restarts,
            inits: 1,
            init_seed: data.seed,
            population: 1,
            wall_seconds: 0.0,
            steps_per_second: 0.0,
        }
    }
}
