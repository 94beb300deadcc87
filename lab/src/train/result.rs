//! What a finished run leaves: its evaluations, its result record and its kept checkpoint.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::eval::{Evaluation, split_mse};
use crate::config::OptimizerKind;
use crate::model::Model;
use crate::protocol::Protocol;
use crate::readback::Readback;
use crate::stacks::{LabModel, ModelKind};
use crate::task::{Operation, Split, TaskData};
use burn_nalu::recipe::{polish_if_better, snap_if_no_worse};

/// The outcome of one run, flat (one CSV row, one JSON object); metrics are those of the model
/// the run keeps: the checkpoint with the lowest validation MSE, polished and snapped where the
/// recipe's rules kept those ([`burn_nalu::recipe`]). The `plain_*` fields give the checkpoint's
/// own, beside them, when the recipe polishes or snaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The stack of units (written `nalu`, `nau-nmu`, …).
    pub model: ModelKind,
    /// The operation (written `add`, `mul`, …).
    pub task: Operation,
    /// The task family (written `reference`, `madsen`).
    pub protocol: Protocol,
    /// The seed of the data, the initial weights and the shuffling.
    pub seed: u64,
    /// The optimizer (written `adam`, `rmsprop`).
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Per-parameter gradient-norm clip, if any.
    pub clip_norm: Option<f32>,
    /// Steps taken (fewer than the budget when the run diverged or stopped early).
    pub steps: usize,
    /// The step of the kept checkpoint (0: the initial weights).
    pub best_step: usize,
    /// Training MSE of the kept checkpoint.
    pub train_mse: f64,
    /// Validation MSE of the kept checkpoint.
    pub valid_mse: f64,
    /// Extrapolation MSE of the kept checkpoint.
    pub extrapolation_mse: f64,
    /// Extrapolation MSE of the same architecture at random initialisation, averaged over
    /// [`BASELINE_INITS`](crate::BASELINE_INITS) seeded initialisations.
    pub random_init_extrapolation_mse: f64,
    /// `100 × extrapolation_mse / random_init_extrapolation_mse` (the NALU paper's measure:
    /// 0 is perfect, 100 no better than a random network).
    pub normalized_extrapolation_error: f64,
    /// The task's success threshold for this run.
    pub success_threshold: f64,
    /// Whether `extrapolation_mse < success_threshold`.
    pub success: bool,
    /// The first evaluated step whose extrapolation MSE was below the threshold, whether or
    /// not the kept checkpoint is from then.
    pub solved_at_step: Option<usize>,
    /// The learned formula in terms of `a` and `b`, when the weights are discrete enough.
    pub formula: Option<String>,
    /// Why there is no formula, otherwise.
    pub formula_error: Option<String>,
    /// `max min(|w|, |1 − |w||)` over the weights (absent for units the formula module cannot
    /// read).
    pub sparsity_error: Option<f64>,
    /// MSE between the snapped formula and the trained network on the extrapolation split.
    pub formula_mse_vs_network: Option<f64>,
    /// MSE between the snapped formula and the extrapolation targets.
    pub formula_mse_vs_targets: Option<f64>,
    /// The step at which the loss turned NaN or infinite; the run stopped there.
    pub diverged_step: Option<usize>,
    /// The offending loss (NaN or infinite).
    pub diverged_loss: Option<f64>,
    /// The evaluated step at which the run met its early-stopping rule and stopped.
    pub stopped_at_step: Option<usize>,
    /// Whether the run stopped by the give-up rule
    /// ([`TrainConfig::give_up_patience`](crate::TrainConfig::give_up_patience)):
    /// unconverged, its validation MSE on a plateau.
    #[serde(default)]
    pub gave_up: bool,
    /// With snapping on: whether the snapped weights were kept (their validation MSE no worse);
    /// the metrics above are then theirs.
    pub snap_kept: Option<bool>,
    /// With snapping on: the validation MSE of the snapped weights.
    pub snapped_valid_mse: Option<f64>,
    /// Written by results from before 7 December 2026, whose metrics were those of the model
    /// before the snap: the extrapolation MSE of the weights the snap rule kept
    /// ([`RunResult::upgrade`] makes it the run's own).
    #[serde(default, skip_serializing)]
    #[doc(hidden)]
    pub snapped_extrapolation_mse: Option<f64>,
    /// Written by results from before 7 December 2026: whether the weights the snap rule kept
    /// succeed.
    #[serde(default, skip_serializing)]
    #[doc(hidden)]
    pub snapped_success: Option<bool>,
    /// With polishing on: whether the polished weights were kept (their validation MSE lower);
    /// the metrics above are then theirs.
    #[serde(default)]
    pub polish_kept: Option<bool>,
    /// With polish or snap on: the validation MSE of the checkpoint before them, a diagnostic
    /// beside the kept model's (results from before 7 December 2026: before the snap only).
    #[serde(default)]
    pub plain_valid_mse: Option<f64>,
    /// With polish or snap on: the extrapolation MSE of the checkpoint before them.
    #[serde(default)]
    pub plain_extrapolation_mse: Option<f64>,
    /// With polish or snap on: whether the checkpoint before them succeeds.
    #[serde(default)]
    pub plain_success: Option<bool>,
    /// Restarts from fresh weights after a stalled loss (iNALU's strategy).
    pub restarts: usize,
    /// Initialisations trained on this seed's data ([`TrainConfig::inits_per_seed`](crate::TrainConfig::inits_per_seed)); this is
    /// the one with the lowest validation MSE.
    #[serde(default = "crate::config::one")]
    pub inits: usize,
    /// The seed of this run's initial weights and shuffling (`seed` for the first
    /// initialisation; absent in results from before initialisations were counted).
    #[serde(default)]
    pub init_seed: u64,
    /// How many runs trained together in this run's population.
    pub population: usize,
    /// Wall-clock seconds of the population's training, evaluation included.
    pub wall_seconds: f64,
    /// The population's training steps per second, evaluation excluded (multiply by
    /// `population` for seed-steps per second).
    pub steps_per_second: f64,
}

impl RunResult {
    /// The model, and the initialisations per seed where there were several (`realnpu, best of
    /// 8`): runs that chose among restarts are never summarised with plain ones.
    pub fn label(&self) -> String {
        let polished = match self.polish_kept {
            Some(_) => ", polished",
            None => "",
        };
        match self.inits {
            0 | 1 => format!("{}{polished}", self.model),
            n => format!("{}, best of {n}{polished}", self.model),
        }
    }

    /// The validation MSE of the weights the run keeps (polished and snapped where kept).
    pub fn kept_valid_mse(&self) -> f64 {
        self.valid_mse
    }

    /// A result read from a file of before 7 December 2026, whose metrics were those of the
    /// model before the snap and `snapped_*` the kept one's, brought to the present meaning:
    /// the kept model's metrics, the earlier ones as `plain_*`. Unchanged for a present result.
    pub fn upgrade(mut self) -> Self {
        let (Some(extrapolation), Some(success)) = (
            self.snapped_extrapolation_mse.take(),
            self.snapped_success.take(),
        ) else {
            return self;
        };
        if self.plain_success.is_some() {
            return self;
        }
        self.plain_valid_mse = Some(self.valid_mse);
        self.plain_extrapolation_mse = Some(self.extrapolation_mse);
        self.plain_success = Some(self.success);
        if self.snap_kept == Some(true) {
            self.valid_mse = self.snapped_valid_mse.unwrap_or(self.valid_mse);
            self.set_extrapolation_mse(extrapolation);
        }
        self.success = success;
        self
    }

    /// Sets the extrapolation MSE, the normalised error and success that follow from it.
    fn set_extrapolation_mse(&mut self, mse: f64) {
        self.extrapolation_mse = mse;
        self.normalized_extrapolation_error = 100.0 * mse / self.random_init_extrapolation_mse;
        self.success = mse < self.success_threshold;
    }

    /// Whether the run learned the arithmetic, verified by its formula: it succeeded, and the
    /// formula its weights read back as (exact integer or half powers, evaluated in f64) meets
    /// the extrapolation targets within the same threshold, so it is the target function on
    /// that data, not a look-alike that happens to fit it.
    pub fn learned(&self) -> bool {
        self.success
            && (self.formula_mse_vs_targets).is_some_and(|mse| mse < self.success_threshold)
    }

    /// Whether the formula module could read the run's model at all (every static stack, and
    /// the recurrent models whose cell is linear: NAC, NAU): a formula, or weights it named as
    /// not discrete.
    pub fn readable(&self) -> bool {
        self.formula.is_some() || self.sparsity_error.is_some()
    }

    /// What happened to the run, in a few words.
    pub fn status(&self) -> String {
        match (self.diverged_step, self.success, self.learned()) {
            (Some(step), _, _) => format!("diverged (step {step})"),
            (None, true, true) => "learned".into(),
            (None, true, false) => "solved, no formula".into(),
            (None, false, _) if !self.extrapolation_mse.is_finite() => {
                "not solved (extrapolation outputs beyond f32)".into()
            }
            (None, false, _) => match self.stopped_at_step.filter(|_| self.gave_up) {
                Some(step) => format!("not solved (gave up at step {step})"),
                None => "not solved".into(),
            },
        }
    }
}

/// A finished run: its result, its evaluations and the kept checkpoint (on the plain device).
#[derive(Debug)]
pub struct TrainedRun<M = LabModel> {
    /// The result.
    pub result: RunResult,
    /// Every evaluation, from step 0.
    pub history: Vec<Evaluation>,
    /// The weights the run keeps: its checkpoint with the lowest validation MSE, polished and
    /// snapped where the recipe kept those.
    pub model: M,
}

/// Where a population's training stands, after each evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Steps completed.
    pub step: usize,
    /// Steps the budget allows.
    pub steps: usize,
    /// Runs still training (not diverged, not stopped early).
    pub active: usize,
    /// Runs in the population.
    pub members: usize,
    /// The lowest validation MSE any run has reached.
    pub best_valid_mse: f64,
}

impl RunResult {
    /// The snap rule of the recipes ([`snap_if_no_worse`]) on `model`; the run's metrics become
    /// the snapped weights' when it keeps them (the extrapolation split is read only to report
    /// the outcome).
    pub(super) fn snap<M: Model>(&mut self, model: M, data: &TaskData, device: &Device) -> M {
        let (model, decision) = snap_if_no_worse(model, &data.valid, device);
        self.snap_kept = Some(decision.kept);
        self.snapped_valid_mse = Some(decision.valid_mse);
        if decision.kept {
            self.valid_mse = decision.valid_mse;
            self.set_extrapolation_mse(split_mse(&model, &data.extrapolation, device));
        }
        model
    }

    /// The polish rule of the recipes ([`polish_if_better`]) on `model` with `rows`; the run's
    /// metrics become the polished weights' when it keeps them (the extrapolation split is read
    /// only to report the outcome).
    pub(super) fn polish<M: Model>(
        &mut self,
        model: M,
        rows: &Split,
        data: &TaskData,
        device: &Device,
    ) -> M {
        let (model, decision) = polish_if_better(model, rows, &data.valid, self.valid_mse, device);
        self.polish_kept = Some(decision.kept);
        if decision.kept {
            self.valid_mse = decision.valid_mse;
            self.train_mse = split_mse(&model, rows, device);
            self.set_extrapolation_mse(split_mse(&model, &data.extrapolation, device));
        }
        model
    }

    /// Records the model's own metrics as the plain ones, before a polish or snap changes them.
    pub(super) fn keep_plain(&mut self) {
        self.plain_valid_mse = Some(self.valid_mse);
        self.plain_extrapolation_mse = Some(self.extrapolation_mse);
        self.plain_success = Some(self.success);
    }

    pub(super) fn readback(&mut self, b: Readback) {
        self.formula = b.formula;
        self.formula_error = b.formula_error;
        self.sparsity_error = b.sparsity_error;
        self.formula_mse_vs_network = b.formula_mse_vs_network;
        self.formula_mse_vs_targets = b.formula_mse_vs_targets;
    }
}
