//! The training loop: a population of runs (one per seed) trained as one model, with model
//! selection on each run's validation split.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::config::{Budget, RunOptimizer, TrainConfig};
use super::readback::Readback;
use super::stacks::StaticToyModel;
use super::task::{BatchSampler, Split, TaskData, TrainingData};
use crate::inalu::StallDetector;
use crate::population::with_seed;
use crate::{ArithmeticUnit, Population};

/// MSE on each split at one evaluation (step 0: the initial weights).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Steps completed.
    pub step: usize,
    /// MSE on the training rows (fixed rows), or of the last training batch (fresh batches).
    pub train_mse: f64,
    /// MSE on the validation split (interpolation).
    pub valid_mse: f64,
    /// MSE on the extrapolation split.
    pub extrapolation_mse: f64,
}

/// The outcome of one run, flat (one CSV row, one JSON object); metrics are those of the
/// checkpoint with the lowest validation MSE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The stack of units (`nalu`, `nau-nmu`, …).
    pub model: String,
    /// The operation (`add`, `mul`, …).
    pub task: String,
    /// The task family (`reference`, `madsen`).
    pub protocol: String,
    /// The seed of the data, the initial weights and the shuffling.
    pub seed: u64,
    /// The optimizer.
    pub optimizer: String,
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
    /// [`BASELINE_INITS`] seeded initialisations.
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
    /// With snapping on: whether the snapped weights were kept (their validation MSE no worse).
    pub snap_kept: Option<bool>,
    /// With snapping on: the validation MSE of the snapped weights.
    pub snapped_valid_mse: Option<f64>,
    /// With snapping on: the extrapolation MSE of the weights the snap rule keeps (snapped or
    /// plain).
    pub snapped_extrapolation_mse: Option<f64>,
    /// With snapping on: whether the weights the snap rule keeps succeed.
    pub snapped_success: Option<bool>,
    /// Restarts from fresh weights after a stalled loss (iNALU's strategy).
    pub restarts: usize,
    /// Initialisations trained on this seed's data ([`TrainConfig::inits_per_seed`]); this is
    /// the one with the lowest validation MSE.
    #[serde(default = "super::config::one")]
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
        match self.inits {
            0 | 1 => self.model.clone(),
            n => format!("{}, best of {n}", self.model),
        }
    }

    /// What happened to the run, in a few words.
    pub fn status(&self) -> String {
        match (self.diverged_step, self.success) {
            (Some(step), _) => format!("diverged (step {step})"),
            (None, true) => "solved".into(),
            (None, false) => "not solved".into(),
        }
    }
}

/// A finished run: its result, its evaluations and the kept checkpoint (on the plain device).
#[derive(Debug)]
pub struct TrainedRun {
    /// The result.
    pub result: RunResult,
    /// Every evaluation, from step 0.
    pub history: Vec<Evaluation>,
    /// The weights with the lowest validation MSE.
    pub model: StaticToyModel,
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

/// Number of random initialisations averaged for the normalised error.
pub const BASELINE_INITS: u64 = 10;
/// Seeds of those initialisations: fixed, so every run of a task shares the same baseline model.
const BASELINE_SEED: u64 = 1_000_000;

/// Trains one run: a population of one (see [`train_population`]).
pub fn train(
    data: TaskData,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
) -> TrainedRun {
    let mut runs = train_population(vec![data], config, device, on_eval);
    runs.pop().expect("one run")
}

/// Trains one run per entry of `data` as one population (see [`Trainer`]) to the end of its
/// budget, calling `on_eval` after every evaluation. With
/// [`inits_per_seed`](TrainConfig::inits_per_seed) `k > 1`, each entry is trained from `k`
/// initialisations (seeds [`init_seed`]) in the same population, and the one with the lowest
/// validation MSE stands for it.
///
/// # Panics
///
/// As [`Trainer::new`].
pub fn train_population(
    data: Vec<TaskData>,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
) -> Vec<TrainedRun> {
    let inits = config.inits_per_seed.max(1);
    let seeds: Vec<u64> = data.iter().map(|d| d.seed).collect();
    let data = data
        .into_iter()
        .flat_map(|d| {
            (0..inits).map(move |k| TaskData {
                seed: init_seed(d.seed, k),
                ..d.clone()
            })
        })
        .collect();
    let mut trainer = Trainer::new(data, config, device);
    while !trainer.is_done() {
        if let Some(progress) = trainer.step() {
            on_eval(&progress);
        }
    }
    let mut runs = trainer.finish().into_iter();
    seeds
        .into_iter()
        .map(|seed| {
            let mut best = runs
                .by_ref()
                .take(inits)
                .min_by(|a, b| valid_key(a).total_cmp(&valid_key(b)))
                .expect("inits ≥ 1");
            best.result.seed = seed;
            best.result.inits = inits;
            best
        })
        .collect()
}

/// The seed of initialisation `k` of seed `seed`: `seed` itself for the first, so one
/// initialisation is the plain run; the others far from every seed a run would use.
pub fn init_seed(seed: u64, k: usize) -> u64 {
    seed ^ ((k as u64) << 40)
}

/// A run's validation MSE for choosing among initialisations (NaN last).
fn valid_key(run: &TrainedRun) -> f64 {
    let v = run.result.valid_mse;
    if v.is_nan() { f64::INFINITY } else { v }
}

/// One run per seed (per entry of its data; one model kind and config) trained as one
/// [`Population`], keeping each run's checkpoint with the lowest validation MSE.
///
/// Training runs on the autodiff twin of the given plain device. Each [`step`](Self::step)
/// minimises, for every run, its batch MSE plus its scheduled regulariser (the population's
/// loss is their sum, so no gradient mixes runs), clips each run's gradients alone, and clamps
/// the units' constrained parameters. A run whose loss turns NaN or infinite stops there (its
/// result says where, and keeps its best checkpoint so far) while the others go on; so does a
/// run that meets the early-stopping rule. A stopped run is held still until the next
/// evaluation, where the population drops the stopped runs once they are an eighth of it (so
/// they cost nothing more). Every run computes what it would alone: the same initialisation,
/// batches and updates (an iNALU restart draws from the process's generator, so it differs).
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    /// The autodiff twin of `device`, where training runs.
    train_device: Device,
    /// The runs still in the population, as their indices in `runs`, in population order.
    members: Vec<usize>,
    model: Population<StaticToyModel>,
    best: Population<StaticToyModel>,
    /// The kept checkpoints of runs the population has dropped.
    dropped: Vec<Option<StaticToyModel>>,
    optim: RunOptimizer,
    eval: EvalSets,
    batches: Batches,
    data: Vec<TaskData>,
    runs: Vec<RunState>,
    steps: usize,
    eval_every: usize,
    step: usize,
    step_seconds: f64,
    started: Instant,
}

impl Trainer {
    /// The initialised population and its data, evaluated once (step 0).
    ///
    /// # Panics
    ///
    /// On an invalid `config` (see [`TrainConfig::validate`]), on an empty `data`, on runs of
    /// different input widths or training-row counts, and on an epoch budget for a task that
    /// draws fresh batches.
    pub fn new(data: Vec<TaskData>, config: &TrainConfig, device: &Device) -> Self {
        if let Err(err) = config.validate() {
            panic!("{err}");
        }
        assert!(!data.is_empty(), "a population needs at least one run");
        let started = Instant::now();
        let ad = device.clone().autodiff();
        let width = data[0].width();
        let init =
            |d: &Device| StaticToyModel::init(config.model, config.init, width, config.hidden, d);
        let model = Population::init(data.iter().map(|d| d.seed), &ad, init);
        let eval = EvalSets::new(&data, device);
        let mut runs: Vec<RunState> = data.iter().map(|d| RunState::new(d, config)).collect();
        let (batches, data) = Batches::new(data, config.batch_size);
        let (steps, eval_every) = batches.schedule(config);
        for run in &mut runs {
            // The iNALU authors' rule: every 10 evaluations, over at least 10 periods of losses.
            run.stall = config
                .restart_on_stall
                .then(|| StallDetector::new(10, 10 * eval_every, 1.0));
        }
        let best = model.valid();
        for (run, m) in runs.iter_mut().zip(eval.evaluate(&best, 0, None)) {
            run.record(m, config.early_stop());
        }
        Self {
            config: config.clone(),
            device: device.clone(),
            train_device: ad,
            members: (0..runs.len()).collect(),
            dropped: vec![None; runs.len()],
            optim: config.optimizer(),
            model,
            best,
            eval,
            batches,
            data,
            runs,
            steps,
            eval_every,
            step: 0,
            step_seconds: 0.0,
            started,
        }
    }

    /// Whether every run has used its budget, diverged or stopped early.
    pub fn is_done(&self) -> bool {
        self.step >= self.steps || !self.runs.iter().any(RunState::active)
    }

    /// One optimizer step of every run still training; after the steps that evaluate, the
    /// progress.
    pub fn step(&mut self) -> Option<Progress> {
        let started = Instant::now();
        let (x, y) = self.batches.next(&self.train_device);
        let lambda = self.config.regularizer.map_or(0.0, |r| r.weight(self.step));
        self.step += 1;
        let step = self.step;
        let is_eval = step.is_multiple_of(self.eval_every) || step == self.steps;
        let runs: Vec<&RunState> = self.members.iter().map(|&r| &self.runs[r]).collect();
        let weights: Vec<f64> = runs.iter().map(|r| lambda * r.lambda_scale).collect();
        let read_mse = is_eval || runs.iter().any(|r| r.stall.is_some());
        let before = self.model.clone();
        let inputs = (x, y);
        let out = population_step(
            self.model.clone(),
            &mut self.optim,
            inputs,
            &self.config,
            &weights,
            read_mse,
        );
        for (k, &r) in self.members.iter().enumerate() {
            let mse = out.mses.as_ref().map(|m| m[k]);
            self.runs[r].after_step(step, out.losses[k], mse);
        }
        let frozen: Vec<bool> = self
            .members
            .iter()
            .map(|&r| !self.runs[r].active())
            .collect();
        self.model = out.model.select(&before, &frozen);
        self.step_seconds += started.elapsed().as_secs_f64();
        is_eval.then(|| self.evaluate(out.mses.as_deref()))
    }

    /// Evaluates every run in the population, keeps improved checkpoints, applies the stopping
    /// and restart rules, and drops stopped runs once they are an eighth of the population.
    fn evaluate(&mut self, batch_mse: Option<&[f64]>) -> Progress {
        let step = self.step;
        let plain = self.model.valid();
        let metrics = self.eval.evaluate(&plain, step, batch_mse);
        let mut improved = vec![false; self.members.len()];
        for ((&r, m), better) in self.members.iter().zip(metrics).zip(&mut improved) {
            if self.runs[r].active() {
                *better = self.runs[r].record(m, self.config.early_stop());
            }
        }
        self.best = self.best.clone().select(&plain, &improved);
        let count = step / self.eval_every;
        let runs = &mut self.runs;
        let stalled: Vec<bool> = self
            .members
            .iter()
            .map(|&r| runs[r].stalled(count))
            .collect();
        if stalled.iter().any(|&s| s) {
            let fresh = self.model.clone().map_unit(StaticToyModel::reinitialize);
            self.model = self.model.clone().select(&fresh, &stalled);
        }
        self.compact();
        Progress {
            step,
            steps: self.steps,
            active: self.runs.iter().filter(|r| r.active()).count(),
            members: self.runs.len(),
            best_valid_mse: self
                .runs
                .iter()
                .map(|r| r.best.valid_mse)
                .fold(f64::INFINITY, f64::min),
        }
    }

    /// Drops the stopped runs from the population (keeping their checkpoints) once they are at
    /// least an eighth of it, and some run is still training.
    fn compact(&mut self) {
        let keep: Vec<bool> = self
            .members
            .iter()
            .map(|&r| self.runs[r].active())
            .collect();
        let stopped = keep.iter().filter(|&&k| !k).count();
        if stopped == 0 || stopped == keep.len() || stopped * 8 < keep.len() {
            return;
        }
        for (k, &r) in self.members.iter().enumerate() {
            if !keep[k] {
                self.dropped[r] = Some(self.best.member(k));
            }
        }
        let n = keep.len();
        self.model = self.model.clone().retain(&keep);
        self.best = self.best.clone().retain(&keep);
        self.optim.retain_members(&keep, n);
        self.eval.retain(&keep);
        self.batches.retain(&keep);
        let mut flags = keep.iter();
        self.members
            .retain(|_| *flags.next().expect("one flag per member"));
    }

    /// The runs' results and kept checkpoints, read back as formulas.
    pub fn finish(self) -> Vec<TrainedRun> {
        let baselines = random_init_extrapolation_mse(&self.data, &self.config, &self.device);
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let steps_per_second = self.step as f64 / self.step_seconds.max(f64::MIN_POSITIVE);
        let total = self.runs.len();
        let mut models = self.dropped;
        for (k, &r) in self.members.iter().enumerate() {
            models[r] = Some(self.best.member(k));
        }
        let (config, device) = (&self.config, &self.device);
        self.runs
            .into_iter()
            .zip(self.data)
            .zip(baselines)
            .zip(models)
            .map(|(((run, data), baseline), model)| {
                let model = model.expect("every run has a checkpoint");
                let mut result = run.result(&data, config, baseline);
                result.readback(Readback::new(&model, &data, device));
                if config.snap {
                    result.snap(&model, &data, device);
                }
                result.population = total;
                result.wall_seconds = wall_seconds;
                result.steps_per_second = steps_per_second;
                TrainedRun {
                    result,
                    history: run.history,
                    model,
                }
            })
            .collect()
    }
}

/// What one population step returns.
struct StepOutput {
    model: Population<StaticToyModel>,
    /// Each run's loss (`MSE + λ·R`), read before the update.
    losses: Vec<f64>,
    /// Each run's batch MSE, read on evaluation steps and for the stall rule.
    mses: Option<Vec<f64>>,
}

/// One step of every run: the losses, backward, per-run gradient clipping, an optimizer step
/// and the units' clamps. Runs whose loss is not finite are updated too; the caller restores
/// them.
fn population_step(
    model: Population<StaticToyModel>,
    optim: &mut RunOptimizer,
    (x, y): (Tensor<3>, Tensor<3>),
    config: &TrainConfig,
    weights: &[f64],
    read_mse: bool,
) -> StepOutput {
    let members = model.members();
    let err = model.forward(x).sub(y);
    let square = err.clone().mul(err);
    // One run keeps the plain mean over all of its batch: the ops a single model has always run.
    let mse = match members {
        1 => square.mean(),
        s => square.mean_dim(1).reshape([s]),
    };
    let loss = match model.regularizer() {
        Some(reg) if weights.iter().any(|&w| w > 0.0) => match members {
            1 => mse.clone().add(reg.mul_scalar(weights[0])),
            s => {
                let w = TensorData::new(weights.to_vec(), [s]);
                mse.clone()
                    .add(reg.mul(Tensor::<1>::from_data(w, &mse.device())))
            }
        },
        _ => mse.clone(),
    };
    let host = |t: Tensor<1>| {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float losses")
    };
    let losses = host(loss.clone());
    let mses = read_mse.then(|| host(mse));
    let total = if members == 1 { loss } else { loss.sum() };
    let mut grads = GradientsParams::from_grads(total.backward(), &model);
    if let Some(max_norm) = config.clip_norm {
        grads = clip_per_member(grads, &model, max_norm);
    }
    let model = optim.step(config.lr, model, grads).clamp_weights();
    StepOutput {
        model,
        losses,
        mses,
    }
}

/// Scales each member's part of each parameter's gradient to an L2 norm of at most
/// `max_norm`, as Burn's norm clipping does for one parameter of one model.
fn clip_per_member(
    mut grads: GradientsParams,
    model: &Population<StaticToyModel>,
    max_norm: f32,
) -> GradientsParams {
    struct Clip<'a> {
        grads: &'a mut GradientsParams,
        members: usize,
        max_norm: f64,
    }
    impl ModuleVisitor for Clip<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(grad) = self.grads.remove::<D>(param.id) else {
                return;
            };
            let shape = grad.shape();
            let s = self.members;
            let per_member = grad.clone().reshape([s, shape.num_elements() / s]);
            let norm = per_member.clone().square().sum_dim(1).sqrt();
            // Burn's rule: g·max/(‖g‖ + 1e-6) when ‖g‖ > max, g otherwise.
            let scale = norm
                .clone()
                .add_scalar(1e-6)
                .recip()
                .mul_scalar(self.max_norm)
                .mask_fill(norm.lower_equal_elem(self.max_norm), 1.0);
            let clipped = per_member.mul(scale).reshape(shape);
            self.grads.register::<D>(param.id, clipped);
        }
    }
    let members = model.members();
    model.visit(&mut Clip {
        grads: &mut grads,
        members,
        max_norm: max_norm as f64,
    });
    grads
}

/// One run's progress through training.
struct RunState {
    history: Vec<Evaluation>,
    best: Evaluation,
    solved_at: Option<usize>,
    diverged: Option<(usize, f64)>,
    stopped_at: Option<usize>,
    restarts: usize,
    stall: Option<StallDetector>,
    /// The factor on `λ` (the training targets' variance when the config scales by it).
    lambda_scale: f64,
    success_threshold: f64,
    valid_threshold: f64,
    /// The validation MSE the plateau is measured against, and evaluations since it was set.
    plateau_level: f64,
    stale: usize,
    steps: usize,
}

impl RunState {
    fn new(data: &TaskData, config: &TrainConfig) -> Self {
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

    fn active(&self) -> bool {
        self.diverged.is_none() && self.stopped_at.is_none()
    }

    /// Counts a step of an active run, and stops it at a loss that is not finite.
    fn after_step(&mut self, step: usize, loss: f64, mse: Option<f64>) {
        if !self.active() {
            return;
        }
        self.steps = step;
        if !loss.is_finite() {
            self.diverged = Some((step, loss));
        } else if let (Some(stall), Some(mse)) = (self.stall.as_mut(), mse) {
            stall.record(mse);
        }
    }

    /// Records an evaluation; `true` when it is the best so far (the checkpoint to keep).
    fn record(&mut self, m: Evaluation, early_stop: Option<(usize, usize)>) -> bool {
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
    fn stalled(&mut self, count: usize) -> bool {
        let stalled = self.active() && self.stall.as_mut().is_some_and(|s| s.stalled(count));
        self.restarts += stalled as usize;
        stalled
    }

    fn result(&self, data: &TaskData, config: &TrainConfig, baseline: f64) -> RunResult {
        let best = self.best;
        RunResult {
            model: config.model.name().into(),
            task: data.op.name().into(),
            protocol: data.protocol.into(),
            seed: data.seed,
            optimizer: config.optimizer.to_string(),
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

impl RunResult {
    /// Tries the kept checkpoint with snapped weights; keeps them when their validation MSE is
    /// no worse (the extrapolation split is read only to report the outcome).
    fn snap(&mut self, model: &StaticToyModel, data: &TaskData, device: &Device) {
        let snapped = model.clone().snap();
        let valid = snapped.mse(&data.valid, device);
        let kept = valid <= model.mse(&data.valid, device);
        let extrapolation = match kept {
            true => snapped.mse(&data.extrapolation, device),
            false => self.extrapolation_mse,
        };
        self.snap_kept = Some(kept);
        self.snapped_valid_mse = Some(valid);
        self.snapped_extrapolation_mse = Some(extrapolation);
        self.snapped_success = Some(extrapolation < self.success_threshold);
    }

    fn readback(&mut self, b: Readback) {
        self.formula = b.formula;
        self.formula_error = b.formula_error;
        self.sparsity_error = b.sparsity_error;
        self.formula_mse_vs_network = b.formula_mse_vs_network;
        self.formula_mse_vs_targets = b.formula_mse_vs_targets;
    }
}

/// Each run's training batches, gathered into one `[runs, batch, width]` input per step.
struct Batches {
    sources: Vec<Source>,
    batch_size: usize,
    width: usize,
}

/// One run's batches: shuffled epochs over fixed rows, or a sampler.
// One per run, made once: the size of the row variant's generator costs nothing.
#[allow(clippy::large_enum_variant)]
enum Source {
    Rows {
        split: Split,
        order: Vec<usize>,
        next: usize,
        rng: StdRng,
    },
    Stream(Box<dyn BatchSampler>),
}

impl Batches {
    /// The batches of `data` (whose training sources move here; the rest is returned).
    fn new(data: Vec<TaskData>, batch_size: usize) -> (Self, Vec<TaskData>) {
        let width = data[0].width();
        let mut sources = Vec::with_capacity(data.len());
        let rest = data
            .into_iter()
            .map(|mut d| {
                assert_eq!(
                    d.width(),
                    width,
                    "runs of one population share an input width"
                );
                let empty = TrainingData::Rows(Split {
                    x: Vec::new(),
                    y: Vec::new(),
                    width,
                });
                sources.push(match std::mem::replace(&mut d.train, empty) {
                    TrainingData::Rows(split) => Source::Rows {
                        order: (0..split.rows()).collect(),
                        next: split.rows(),
                        rng: StdRng::seed_from_u64(d.seed ^ 0x5EED_5EED_5EED_5EED),
                        split,
                    },
                    TrainingData::Stream(sampler) => Source::Stream(sampler),
                });
                d
            })
            .collect();
        let rows: Vec<usize> = sources.iter().filter_map(Source::rows).collect();
        assert!(
            rows.is_empty() || (rows.len() == sources.len() && rows.iter().all(|&r| r == rows[0])),
            "runs of one population have the same number of training rows, or none"
        );
        let batches = Self {
            sources,
            batch_size,
            width,
        };
        (batches, rest)
    }

    /// Keeps the sources of the runs where `keep` is set.
    fn retain(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.sources
            .retain(|_| *flags.next().expect("one flag per run"));
    }

    /// Steps per epoch over fixed rows, `None` for fresh batches.
    fn steps_per_epoch(&self) -> Option<usize> {
        self.sources[0].rows().map(|r| r.div_ceil(self.batch_size))
    }

    /// `(steps, evaluate every)` of `config` on these batches.
    fn schedule(&self, config: &TrainConfig) -> (usize, usize) {
        let per_epoch = self.steps_per_epoch();
        let steps = match (config.budget, per_epoch) {
            (Budget::Steps(n), _) => n,
            (Budget::Epochs(n), Some(per)) => n * per,
            (Budget::Epochs(_), None) => {
                panic!("an epoch budget needs fixed training rows; this task draws fresh batches")
            }
        };
        let every = config.eval_every.or(per_epoch).unwrap_or(1000);
        (steps, every)
    }

    /// The next batch of every run, `([runs, batch, width], [runs, batch, 1])`. Over fixed
    /// rows an epoch's last batch may be smaller (the same size for every run).
    fn next(&mut self, device: &Device) -> (Tensor<3>, Tensor<3>) {
        let (s, w) = (self.sources.len(), self.width);
        let rows = self.sources[0].next_len(self.batch_size);
        let (mut x, mut y) = (
            Vec::with_capacity(s * rows * w),
            Vec::with_capacity(s * rows),
        );
        for source in &mut self.sources {
            source.append(rows, &mut x, &mut y);
        }
        (
            Tensor::from_data(TensorData::new(x, [s, rows, w]), device),
            Tensor::from_data(TensorData::new(y, [s, rows, 1]), device),
        )
    }
}

impl Source {
    fn rows(&self) -> Option<usize> {
        match self {
            Source::Rows { split, .. } => Some(split.rows()),
            Source::Stream(_) => None,
        }
    }

    /// The size of the next batch: `batch`, or what is left of the epoch.
    fn next_len(&self, batch: usize) -> usize {
        match self {
            Source::Rows { split, next, .. } if *next < split.rows() => {
                batch.min(split.rows() - next)
            }
            _ => batch,
        }
    }

    /// Appends one batch of `rows` rows; a new epoch starts with a fresh shuffle of the rows.
    fn append(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) {
        match self {
            Source::Rows {
                split,
                order,
                next,
                rng,
            } => {
                if *next >= split.rows() {
                    order.shuffle(rng);
                    *next = 0;
                }
                let w = split.width;
                for &row in &order[*next..*next + rows] {
                    x.extend_from_slice(&split.x[row * w..(row + 1) * w]);
                    y.push(split.y[row]);
                }
                *next += rows;
            }
            Source::Stream(sampler) => sampler.sample(rows, x, y),
        }
    }
}

/// Every run's evaluation splits, stacked `[runs, rows, width]` on the plain device.
struct EvalSets {
    /// Training rows, for tasks that have fixed ones.
    train: Option<(Tensor<3>, Vec<f32>)>,
    valid: (Tensor<3>, Vec<f32>),
    extrapolation: (Tensor<3>, Vec<f32>),
}

impl EvalSets {
    fn new(data: &[TaskData], device: &Device) -> Self {
        let stack = |splits: Vec<&Split>| {
            let (rows, width) = (splits[0].rows(), splits[0].width);
            let x: Vec<f32> = splits.iter().flat_map(|s| s.x.iter().copied()).collect();
            let y: Vec<f32> = splits.iter().flat_map(|s| s.y.iter().copied()).collect();
            let shape = [splits.len(), rows, width];
            (Tensor::from_data(TensorData::new(x, shape), device), y)
        };
        let train: Option<Vec<&Split>> = data.iter().map(TaskData::train_rows).collect();
        Self {
            train: train.map(stack),
            valid: stack(data.iter().map(|d| &d.valid).collect()),
            extrapolation: stack(data.iter().map(|d| &d.extrapolation).collect()),
        }
    }

    /// Keeps the splits of the runs where `keep` is set.
    fn retain(&mut self, keep: &[bool]) {
        let index: Vec<i64> = (0..keep.len() as i64)
            .filter(|&k| keep[k as usize])
            .collect();
        let retain = |(x, y): &mut (Tensor<3>, Vec<f32>)| {
            let rows = y.len() / keep.len();
            let idx = TensorData::new(index.clone(), [index.len()]);
            let idx = Tensor::<1, burn::tensor::Int>::from_data(idx, &x.device());
            *x = x.clone().select(0, idx);
            let kept = y.chunks(rows).zip(keep).filter(|(_, k)| **k);
            *y = kept.flat_map(|(block, _)| block.to_vec()).collect();
        };
        if let Some(train) = &mut self.train {
            retain(train);
        }
        retain(&mut self.valid);
        retain(&mut self.extrapolation);
    }

    /// Each run's metrics at `step`; `batch_mse` stands in for the training MSE of tasks
    /// without fixed training rows.
    fn evaluate(
        &self,
        model: &Population<StaticToyModel>,
        step: usize,
        batch_mse: Option<&[f64]>,
    ) -> Vec<Evaluation> {
        let s = model.members();
        let valid = member_mse(model, &self.valid);
        let extrapolation = member_mse(model, &self.extrapolation);
        let train = match (&self.train, batch_mse) {
            (Some(rows), _) => member_mse(model, rows),
            (None, Some(batch)) => batch.to_vec(),
            (None, None) => vec![f64::NAN; s],
        };
        (0..s)
            .map(|k| Evaluation {
                step,
                train_mse: train[k],
                valid_mse: valid[k],
                extrapolation_mse: extrapolation[k],
            })
            .collect()
    }
}

/// Each member's MSE on its block of `(x, y)`: the f32 outputs' squared errors summed on the
/// host in f64, in row order, so that the number does not depend on a backend's summation
/// order.
fn member_mse(model: &Population<StaticToyModel>, (x, y): &(Tensor<3>, Vec<f32>)) -> Vec<f64> {
    let pred = model.forward(x.clone()).into_data().convert::<f64>();
    let pred = pred.as_slice::<f64>().expect("f64 after convert");
    let rows = y.len() / model.members();
    pred.chunks(rows)
        .zip(y.chunks(rows))
        .map(|(p, t)| mean_squared_error(p, t))
        .collect()
}

/// `Σ (p − t)² / n` in f64, in row order.
fn mean_squared_error(pred: &[f64], targets: &[f32]) -> f64 {
    let total: f64 = pred
        .iter()
        .zip(targets)
        .map(|(p, &t)| (p - t as f64).powi(2))
        .sum();
    total / targets.len() as f64
}

impl StaticToyModel {
    /// The mean squared error on `split`: the f32 outputs' squared errors summed on the host in
    /// f64, in row order, so that the number does not depend on a backend's summation order.
    pub fn mse(&self, split: &Split, device: &Device) -> f64 {
        let (x, _) = split.tensors(device);
        let pred = self.forward(x).into_data().convert::<f64>();
        mean_squared_error(pred.as_slice::<f64>().expect("f64 after convert"), &split.y)
    }
}

/// Mean extrapolation MSE of [`BASELINE_INITS`] freshly initialised models, per run.
fn random_init_extrapolation_mse(
    data: &[TaskData],
    config: &TrainConfig,
    device: &Device,
) -> Vec<f64> {
    let width = data[0].width();
    let sets = EvalSets::new(data, device);
    let mut total = vec![0.0; data.len()];
    for k in 0..BASELINE_INITS {
        let model = with_seed(device, BASELINE_SEED + k, || {
            StaticToyModel::init(config.model, config.init, width, config.hidden, device)
        });
        let population = Population::from_members(vec![model; data.len()]);
        for (t, m) in total
            .iter_mut()
            .zip(member_mse(&population, &sets.extrapolation))
        {
            *t += m;
        }
    }
    total.iter().map(|t| t / BASELINE_INITS as f64).collect()
}
