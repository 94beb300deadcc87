//! One run's progress through training: its evaluations, best checkpoint, divergence, early
//! stop, giving up and restarts.

use super::checkpoint::{Reader, Writer};
use super::eval::Evaluation;
use super::result::RunResult;
use crate::config::{StopRule, TrainConfig};
use crate::task::TaskData;
use burn_nalu::inalu::StallDetector;

/// How far above the validation threshold a run's best validation MSE must be for the give-up
/// rule to stop it ([`TrainConfig::give_up_patience`]).
const GIVE_UP_MARGIN: f64 = 10.0;

/// One run's progress through training.
pub(super) struct RunState {
    pub(super) history: Vec<Evaluation>,
    pub(super) best: Evaluation,
    solved_at: Option<usize>,
    diverged: Option<(usize, f64)>,
    stopped_at: Option<usize>,
    /// Whether the run stopped by the give-up rule (not converged).
    gave_up: bool,
    pub(super) restarts: usize,
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
            gave_up: false,
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
    /// Applies the early stop and the give-up rule of `config`; `snapped_valid_mse` is the
    /// validation MSE of the evaluated weights snapped, asked only when the early stop's
    /// [`StopRule::Snapped`] needs it.
    pub(super) fn record(
        &mut self,
        m: Evaluation,
        config: &TrainConfig,
        snapped_valid_mse: impl FnOnce() -> f64,
    ) -> bool {
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
        let stale = self.stale;
        let plateaued = |rule: Option<(usize, usize)>| {
            rule.is_some_and(|(after, patience)| m.step >= after && stale >= patience)
        };
        // Giving up also needs the plateau to be at least half of the run so far: a run that
        // learns slowly (NAC• on `×` is solved at 2.8 million steps in the median) keeps going
        // for as long again as it has been learning. And a run within a factor
        // `GIVE_UP_MARGIN` of the threshold (its weights a few ε from exact, as NAC → NAC's
        // on `−` after 100,000 steps) is still converging, however slowly: it trains on.
        let half_stale = 2 * stale >= self.history.len() - 1;
        let far = self.best.valid_mse > GIVE_UP_MARGIN * self.valid_threshold;
        // The snapped weights are evaluated last, on the few evaluations that get this far.
        let settled = || match config.early_stop_rule {
            StopRule::Plateau => true,
            StopRule::Snapped => m.valid_mse <= snapped_valid_mse(),
        };
        if converged && plateaued(config.early_stop()) && settled() {
            self.stopped_at = Some(m.step);
        } else if far && half_stale && plateaued(config.give_up()) {
            (self.stopped_at, self.gave_up) = (Some(m.step), true);
        }
        better
    }

    /// Whether the stall rule restarts the run after evaluation `count`.
    pub(super) fn stalled(&mut self, count: usize) -> bool {
        let stalled = self.active() && self.stall.as_mut().is_some_and(|s| s.stalled(count));
        self.restarts += stalled as usize;
        stalled
    }

    /// Stops the run at `step` as the early stop would (for tests of what follows a stop).
    #[cfg(test)]
    pub(super) fn stop(&mut self, step: usize) {
        self.stopped_at = Some(step);
    }

    /// Writes what the run has come to (a training checkpoint's part); what
    /// [`RunState::new`] derives from the data and config is not written.
    pub(super) fn save(&self, w: &mut Writer) {
        let evaluation = |w: &mut Writer, m: &Evaluation| {
            w.u64(m.step as u64);
            for v in [m.train_mse, m.valid_mse, m.extrapolation_mse] {
                w.f64(v);
            }
        };
        w.u64(self.history.len() as u64);
        self.history.iter().for_each(|m| evaluation(w, m));
        evaluation(w, &self.best);
        w.opt(self.solved_at);
        w.opt(self.diverged.map(|d| d.0));
        w.f64(self.diverged.map_or(0.0, |d| d.1));
        w.opt(self.stopped_at);
        w.bool(self.gave_up);
        w.u64(self.restarts as u64);
        w.bool(self.stall.is_some());
        if let Some(stall) = &self.stall {
            w.f64s(stall.losses());
        }
        w.f64(self.plateau_level);
        w.u64(self.stale as u64);
        w.u64(self.steps as u64);
    }

    /// Reads what [`RunState::save`] wrote into a run fresh from the same data and config.
    pub(super) fn load(&mut self, r: &mut Reader) -> Result<(), String> {
        let evaluation = |r: &mut Reader| -> Result<Evaluation, String> {
            Ok(Evaluation {
                step: r.usize()?,
                train_mse: r.f64()?,
                valid_mse: r.f64()?,
                extrapolation_mse: r.f64()?,
            })
        };
        self.history = (0..r.len()?)
            .map(|_| evaluation(r))
            .collect::<Result<_, _>>()?;
        self.best = evaluation(r)?;
        self.solved_at = r.opt()?;
        let (diverged_at, loss) = (r.opt()?, r.f64()?);
        self.diverged = diverged_at.map(|step| (step, loss));
        self.stopped_at = r.opt()?;
        self.gave_up = r.bool()?;
        self.restarts = r.usize()?;
        match (r.bool()?, &mut self.stall) {
            (true, Some(stall)) => stall.set_losses(r.f64s()?),
            (false, None) => {}
            _ => return Err("the stall rule was on in one of the two and off in the other".into()),
        }
        self.plateau_level = r.f64()?;
        self.stale = r.usize()?;
        self.steps = r.usize()?;
        Ok(())
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
            gave_up: self.gave_up,
            snap_kept: None,
            polish_kept: None,
            snapped_valid_mse: None,
            snapped_extrapolation_mse: None,
            snapped_success: None,
            plain_valid_mse: None,
            plain_extrapolation_mse: None,
            plain_success: None,
            restarts: self.restarts,
            inits: 1,
            init_seed: data.seed,
            population: 1,
            wall_seconds: 0.0,
            steps_per_second: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MadsenSpec, MadsenTask, ModelKind, Operation, Task};

    /// A small Madsen & Johansen `a + b` task (seed 0), for its thresholds.
    fn madsen_data() -> TaskData {
        let spec = MadsenSpec {
            eval_rows: 10,
            ..MadsenSpec::default()
        };
        MadsenTask::new(spec).unwrap().data(Operation::Add, 0)
    }

    /// The step at which the give-up rule (patience 3, no regulariser) stops a run whose
    /// validation MSE at evaluation `step` is `valid(step, threshold)`.
    fn gives_up_at(valid: impl Fn(usize, f64) -> f64) -> Option<usize> {
        let config = TrainConfig {
            regularizer: None,
            early_stop_patience: None,
            give_up_patience: Some(3),
            ..TrainConfig::madsen(ModelKind::Nau)
        };
        let data = madsen_data();
        let mut run = RunState::new(&data, &config);
        for step in 0..100 {
            let valid_mse = valid(step, data.valid_threshold);
            let m = Evaluation {
                step,
                train_mse: valid_mse,
                valid_mse,
                extrapolation_mse: valid_mse,
            };
            run.record(m, &config, || f64::NAN);
            if !run.active() {
                assert!(run.gave_up);
                return run.stopped_at;
            }
        }
        None
    }

    /// The step at which the early stop (patience 3, no regulariser, `rule`) ends a run whose
    /// validation MSE sits at a tenth of its threshold from evaluation 1 on, its weights
    /// snapped fitting validation at `snapped` times that.
    fn stops_early_at(rule: StopRule, snapped: f64) -> Option<usize> {
        let config = TrainConfig {
            regularizer: None,
            early_stop_patience: Some(3),
            early_stop_rule: rule,
            ..TrainConfig::madsen(ModelKind::Nau)
        };
        let data = madsen_data();
        let mut run = RunState::new(&data, &config);
        for step in 0..20 {
            let valid_mse = if step == 0 {
                1.0
            } else {
                0.1 * data.valid_threshold
            };
            let m = Evaluation {
                step,
                train_mse: valid_mse,
                valid_mse,
                extrapolation_mse: valid_mse,
            };
            run.record(m, &config, || snapped * valid_mse);
            if !run.active() {
                assert!(!run.gave_up);
                return run.stopped_at;
            }
        }
        None
    }

    #[test]
    fn the_snapped_rule_stops_only_a_run_that_snapping_would_not_improve() {
        // Three evaluations without a 1% gain after the last gain (evaluation 1): evaluation 4.
        assert_eq!(stops_early_at(StopRule::Plateau, 0.5), Some(4));
        // Snapped weights that fit better: the run is still on its way to them.
        assert_eq!(stops_early_at(StopRule::Snapped, 0.5), None);
        // Snapped weights that fit as well (exact weights) or worse (an optimum the snap
        // cannot reach): nothing left to gain.
        assert_eq!(stops_early_at(StopRule::Snapped, 1.0), Some(4));
        assert_eq!(stops_early_at(StopRule::Snapped, 1e3), Some(4));
    }

    #[test]
    fn a_run_gives_up_after_its_patience_and_half_its_evaluations_without_progress() {
        // Halving at each evaluation up to `learning`, then stuck, far above the threshold
        // (0.5¹⁰ ≈ 1e-3 at the lowest).
        let halving =
            |learning: usize| move |step: usize, _| 0.5f64.powi(step.min(learning) as i32);
        // Learning until evaluation 1: three stale evaluations are also half of four.
        assert_eq!(gives_up_at(halving(1)), Some(4));
        // Learning until evaluation 10: stale from 11 on, and half the run only at 20.
        assert_eq!(gives_up_at(halving(10)), Some(20));
    }

    #[test]
    fn a_run_near_the_threshold_never_gives_up() {
        // From evaluation 1 on, stuck at `times` the validation threshold.
        let stuck = |times: f64| move |step: usize, t: f64| if step == 0 { 1.0 } else { times * t };
        // Twice the threshold: not converged, but close enough to be converging still.
        assert_eq!(gives_up_at(stuck(2.0)), None);
        // Twenty times: far, given up as above.
        assert_eq!(gives_up_at(stuck(20.0)), Some(4));
    }
}
