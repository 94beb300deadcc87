//! The training loop: a population of runs (one per seed) trained as one model, with model
//! selection on each run's validation split.
//!
//! One loop for any [`Model`] and any shape of task row (see [`Split`](super::Split)): the
//! [`Trainer`] here holds the population and drives it; [`batches`] gathers each run's training
//! batch, [`step`] is one optimizer step of every run (`host` the same on the host, member by
//! member, for the models whose layers have host kernels), [`run`] follows each run (best
//! checkpoint, divergence, early stop, giving up, restarts), [`eval`] measures the runs on
//! their splits, and [`result`] is what a finished run leaves.

mod batches;
mod checkpoint;
mod eval;
#[cfg(feature = "flex")]
mod host;
mod polish;
mod result;
mod run;
mod step;
mod watch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Device;

use super::config::{RunOptimizer, TrainConfig};
use super::error::ExperimentError;
use super::model::Model;
use super::readback::Readback;
use super::stacks::LabModel;
use super::task::{Split, TaskData};
use super::write::write_file;
use batches::Batches;
use burn_nalu::Population;
use burn_nalu::inalu::StallDetector;
use burn_nalu::internals::with_seed;
use burn_nalu::recipe::best_on_validation;
pub use burn_nalu::recipe::{Polish, polish};
pub use eval::Evaluation;
pub use eval::{BASELINE_INITS, split_mse};
use eval::{EvalSets, random_init_extrapolation_mse};
#[cfg(feature = "flex")]
use host::HostStep;
pub use result::{Progress, RunResult, TrainedRun};
use run::RunState;
use step::{Penalties, population_step};
use watch::Watch;

/// Trains one run: a population of one (see [`train_population`]).
///
/// # Errors
///
/// As [`Trainer::new`].
pub fn train<M: Model>(
    data: TaskData,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
) -> Result<TrainedRun<M>, ExperimentError> {
    let mut runs = train_population(vec![data], config, device, on_eval)?;
    Ok(runs.pop().expect("one run"))
}

/// Trains one run per entry of `data` as one population (see [`Trainer`]) to the end of its
/// budget, calling `on_eval` after every evaluation. With
/// [`inits_per_seed`](TrainConfig::inits_per_seed) `k > 1`, each entry is trained from `k`
/// initialisations (seeds [`init_seed`]) in the same population, and the one with the lowest
/// validation MSE stands for it.
///
/// # Errors
///
/// As [`Trainer::new`].
pub fn train_population<M: Model>(
    data: Vec<TaskData>,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
) -> Result<Vec<TrainedRun<M>>, ExperimentError> {
    train_population_with(data, config, device, on_eval, None)
}

/// Where a population keeps its training checkpoint ([`train_population_checkpointed`]).
#[derive(Clone, Debug)]
pub struct Checkpointing {
    /// The checkpoint file, replaced whole each time ([`write_file`]).
    pub path: PathBuf,
    /// Wall time between two checkpoints (the first evaluation after it has passed writes one).
    pub every: Duration,
}

/// [`train_population`], continued from `checkpoint.path` when that file exists (it must be
/// of the same data and config), which it rewrites every `checkpoint.every` of training
/// ([`Trainer::checkpoint`]): a population longer than a process trains to the end over
/// several, each run as it would have gone in one. The file stays when training ends (to be
/// removed once the results are kept).
///
/// # Errors
///
/// As [`train_population`]; [`ExperimentError::Resume`] (naming the file) for a checkpoint of
/// another population or a damaged one, and before any training for a run whose batch sampler
/// has no state ([`BatchSampler::state`](super::BatchSampler::state));
/// [`ExperimentError::Io`] when the file cannot be read or written.
pub fn train_population_checkpointed<M: Model>(
    data: Vec<TaskData>,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
    checkpoint: &Checkpointing,
) -> Result<Vec<TrainedRun<M>>, ExperimentError> {
    train_population_with(data, config, device, on_eval, Some(checkpoint))
}

fn train_population_with<M: Model>(
    data: Vec<TaskData>,
    config: &TrainConfig,
    device: &Device,
    on_eval: &mut dyn FnMut(&Progress),
    checkpoint: Option<&Checkpointing>,
) -> Result<Vec<TrainedRun<M>>, ExperimentError> {
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
    let mut trainer = match checkpoint.filter(|c| c.path.exists()) {
        Some(c) => resume_file(&c.path, data, config, device)?,
        None => Trainer::new(data, config, device)?,
    };
    if checkpoint.is_some() {
        // Refused now rather than at the first checkpoint, minutes into training.
        trainer.checkpoint()?;
    }
    let mut written = Instant::now();
    while !trainer.is_done() {
        if let Some(progress) = trainer.step() {
            on_eval(&progress);
            let due = checkpoint.filter(|c| written.elapsed() >= c.every);
            if let Some(c) = due.filter(|_| !trainer.is_done()) {
                write_file(&c.path, &trainer.checkpoint()?)?;
                written = Instant::now();
            }
        }
    }
    let mut runs = trainer.finish().into_iter();
    let best_of_inits = |seed| {
        let mut group: Vec<TrainedRun<M>> = runs.by_ref().take(inits).collect();
        let keys: Vec<f64> = group.iter().map(|r| r.result.kept_valid_mse()).collect();
        let mut best = group.swap_remove(best_on_validation(&keys).expect("inits ≥ 1"));
        best.result.seed = seed;
        best.result.inits = inits;
        best
    };
    Ok(seeds.into_iter().map(best_of_inits).collect())
}

/// The trainer of the checkpoint file `path` ([`Trainer::resume`]), its errors naming the file.
fn resume_file<M: Model>(
    path: &Path,
    data: Vec<TaskData>,
    config: &TrainConfig,
    device: &Device,
) -> Result<Trainer<M>, ExperimentError> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    Trainer::resume(data, config, device, &bytes).map_err(|e| match e {
        ExperimentError::Resume(why) => {
            ExperimentError::Resume(format!("{}: {why}", path.display()))
        }
        e => e,
    })
}

/// [`stream_seed`]'s tag of the fresh weights of a run restarted at an evaluation.
const RESTART: u64 = 0x5245_5354_4152_5400;
/// [`stream_seed`]'s tag of a run's random draws in a training step (the sNMU's noise).
const NOISE: u64 = 0x4e4f_4953_4500_0000;

/// The seed of run `seed`'s draws of kind `tag` at `n` (a restart's evaluation, a step):
/// SplitMix64's finaliser of the three, far from every seed a run or an initialisation uses.
fn stream_seed(tag: u64, seed: u64, n: usize) -> u64 {
    let mut z = (seed ^ tag).wrapping_add((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of initialisation `k` of seed `seed`: `seed` itself for the first, so one
/// initialisation is the plain run; the others far from every seed a run would use.
pub fn init_seed(seed: u64, k: usize) -> u64 {
    seed ^ ((k as u64) << 40)
}

/// One run per seed (per entry of its data; one model and config) trained as one
/// [`Population`], keeping each run's checkpoint with the lowest validation MSE.
///
/// Training runs on the autodiff twin of the given plain device, or, for a model whose layers
/// all have host kernels (NAU → NMU, NAU → NAU) on the flex backend, on the host member by member
/// (the same step to rounding; see ARCHITECTURE.md, "The host step"). Each [`step`](Self::step)
/// minimises, for every run, its batch MSE plus its scheduled regulariser (the population's
/// loss is their sum, so no gradient mixes runs), clips each run's gradients alone, and clamps
/// the units' constrained parameters. A run whose loss turns NaN or infinite stops there (its
/// result says where, and keeps its best checkpoint so far) while the others go on; so does a
/// run that meets the early-stopping rule. A stopped run is held still until the next
/// evaluation, where the population drops the stopped runs once they are an eighth of it (so
/// they cost nothing more). Every run computes what it would alone: the same initialisation,
/// batches, updates and restarts.
pub struct Trainer<M: Model = LabModel> {
    config: TrainConfig,
    device: Device,
    /// The autodiff twin of `device`, where training runs.
    train_device: Device,
    /// The runs still in the population, as their indices in `runs`, in population order.
    members: Vec<usize>,
    model: Population<M>,
    best: Population<M>,
    /// The kept checkpoints of runs the population has dropped.
    dropped: Vec<Option<M>>,
    optim: RunOptimizer,
    /// The population's step on the host, member by member, where its model has one.
    #[cfg(feature = "flex")]
    host: Option<HostStep>,
    /// Where the losses are watched for divergence.
    watch: Watch,
    eval: EvalSets,
    batches: Batches,
    data: Vec<TaskData>,
    /// Each run's training rows to polish on, drawn at the start ([`TrainConfig::polish`]).
    polish_rows: Vec<Option<Split>>,
    runs: Vec<RunState>,
    steps: usize,
    eval_every: usize,
    step: usize,
    step_seconds: f64,
    started: Instant,
}

impl<M: Model> Trainer<M> {
    /// The initialised population and its data, evaluated once (step 0).
    ///
    /// # Errors
    ///
    /// On an invalid `config` ([`TrainConfig::validate_for`]: its own fields, or an epoch budget
    /// for a task that draws fresh batches), on an empty `data` and on runs of different input
    /// or target widths or training-row counts.
    pub fn new(
        data: Vec<TaskData>,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<Self, ExperimentError> {
        let first = data
            .first()
            .ok_or_else(|| ExperimentError::Data("a population needs at least one run".into()))?;
        config.validate_for(first)?;
        let started = Instant::now();
        let ad = device.clone().autodiff();
        let step_width = first.step_width;
        let init = |d: &Device| M::init(config, step_width, d);
        batches::check_shapes(&data)?;
        let model = Population::init(data.iter().map(|d| d.seed), &ad, init);
        let eval = EvalSets::new(&data, device);
        let runs = data.iter().map(|d| RunState::new(d, config)).collect();
        let polish_rows = data
            .iter()
            .map(|d| config.polish.then(|| polish::training_rows(d)))
            .collect();
        let (batches, data) = Batches::new(data, config.batch_size);
        let (steps, eval_every) = batches.schedule(config);
        let watch = Watch::new(&ad, data.len());
        let mut trainer = Self {
            config: config.clone(),
            device: device.clone(),
            train_device: ad,
            members: (0..data.len()).collect(),
            dropped: vec![None; data.len()],
            optim: config.optimizer(),
            #[cfg(feature = "flex")]
            host: HostStep::new(&model, config),
            watch,
            best: model.valid(),
            model,
            eval,
            batches,
            data,
            polish_rows,
            runs,
            steps,
            eval_every,
            step: 0,
            step_seconds: 0.0,
            started,
        };
        trainer.start();
        Ok(trainer)
    }

    /// Arms the stall rule and records the evaluation of the initial weights (step 0).
    fn start(&mut self) {
        let (config, eval_every) = (&self.config, self.eval_every);
        for run in &mut self.runs {
            // The iNALU authors' rule: every 10 evaluations, over at least 10 periods of losses.
            run.stall = config
                .restart_on_stall
                .then(|| StallDetector::new(10, 10 * eval_every, 1.0));
        }
        let initial = self.eval.evaluate(&self.best, 0, None);
        // No stopping rule fires at step 0, so the snapped weights are never asked for.
        for (run, m) in self.runs.iter_mut().zip(initial) {
            run.record(m, config, || f64::NAN);
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
        let lambda = self.config.regularizer.map_or(0.0, |r| r.weight(self.step));
        let beta = self.config.l1.map_or(0.0, |l1| l1.weight(self.step));
        self.step += 1;
        let step = self.step;
        let is_eval = step.is_multiple_of(self.eval_every) || step == self.steps;
        let runs: Vec<&RunState> = self.members.iter().map(|&r| &self.runs[r]).collect();
        let weights: Vec<f64> = runs.iter().map(|r| lambda * r.lambda_scale).collect();
        let read_mse = is_eval || runs.iter().any(|r| r.stall.is_some());
        let before = self.model.clone();
        let penalties = Penalties {
            regularizer: &weights,
            l1: beta,
        };
        let out = self.run_step(penalties, read_mse);
        for (k, loss) in self.watch.observe(step, out.losses) {
            self.runs[self.members[k]].diverge(step, loss);
        }
        if is_eval {
            for (k, at, loss) in self.watch.diverged() {
                self.runs[self.members[k]].diverge(at, loss);
            }
        }
        for (k, &r) in self.members.iter().enumerate() {
            let mse = out.mses.as_ref().map(|m| m[k]);
            self.runs[r].after_step(step, mse);
        }
        let frozen: Vec<bool> = self.member_flags(|run| !run.active());
        self.model = out.model.select(&before, &frozen);
        self.step_seconds += started.elapsed().as_secs_f64();
        is_eval.then(|| self.evaluate(out.mses.as_deref()))
    }

    /// One step of the population, on the host where it has a host step.
    fn run_step(&mut self, penalties: Penalties, read_mse: bool) -> step::StepOutput<M> {
        let (model, optim, config) = (self.model.clone(), &mut self.optim, &self.config);
        // Each run's random draws in the step (the sNMU's noise) from its seed and the step.
        let seeds: Vec<u64> = (self.members.iter())
            .map(|&r| stream_seed(NOISE, self.data[r].seed, self.step))
            .collect();
        #[cfg(feature = "flex")]
        if let Some(host) = &self.host {
            let batches = &mut self.batches;
            let args = (optim, batches, config, penalties, &seeds[..], read_mse);
            return host.step(model, args);
        }
        let batch = self.batches.next(&self.train_device);
        burn_nalu::internals::with_member_seeds(seeds, || {
            population_step(model, optim, batch, config, penalties, read_mse)
        })
    }

    /// `f` of each run still in the population, in population order.
    fn member_flags(&self, f: impl Fn(&RunState) -> bool) -> Vec<bool> {
        self.members.iter().map(|&r| f(&self.runs[r])).collect()
    }

    /// Evaluates every run in the population, keeps improved checkpoints, applies the stopping
    /// and restart rules, and drops stopped runs once they are an eighth of the population.
    fn evaluate(&mut self, batch_mse: Option<&[f64]>) -> Progress {
        let step = self.step;
        let plain = self.model.valid();
        let metrics = self.eval.evaluate(&plain, step, batch_mse);
        let mut improved = vec![false; self.members.len()];
        let members = self.members.iter().zip(metrics).zip(&mut improved);
        for (k, ((&r, m), better)) in members.enumerate() {
            let (valid, device) = (&self.data[r].valid, &self.device);
            // The lower of both snaps: a root's near miss (weights ½) also trains on.
            let snapped = || {
                let member = plain.member(k);
                let mse = |m: &M| split_mse(m, valid, device);
                mse(&member.clone().snap()).min(mse(&member.snap_halves()))
            };
            if self.runs[r].active() {
                *better = self.runs[r].record(m, &self.config, snapped);
            }
        }
        self.best = self.best.clone().select(&plain, &improved);
        self.restart_stalled(step / self.eval_every);
        self.compact();
        Progress {
            step,
            steps: self.steps,
            active: self.runs.iter().filter(|r| r.active()).count(),
            members: self.runs.len(),
            best_valid_mse: (self.runs.iter().map(|r| r.best.valid_mse))
                .fold(f64::INFINITY, f64::min),
        }
    }

    /// Restarts from fresh weights the runs whose loss has stalled at evaluation `count`.
    fn restart_stalled(&mut self, count: usize) {
        let runs = &mut self.runs;
        let stalled: Vec<bool> = (self.members.iter())
            .map(|&r| runs[r].stalled(count))
            .collect();
        if !stalled.iter().any(|&s| s) {
            return;
        }
        // Each stalled run redraws alone, from a generator seeded by its seed and `count`: what
        // it would draw in any population, and again when resumed from a checkpoint.
        let fresh = (self.members.iter().zip(&stalled).enumerate())
            .map(|(k, (&r, &stalled))| {
                let member = self.model.member(k);
                match stalled {
                    true => with_seed(
                        &self.train_device,
                        stream_seed(RESTART, self.data[r].seed, count),
                        || member.reinitialize(),
                    ),
                    false => member,
                }
            })
            .collect();
        let fresh = Population::from_members(fresh);
        self.model = self.model.clone().select(&fresh, &stalled);
    }

    /// Drops the stopped runs from the population (keeping their checkpoints) once they are at
    /// least an eighth of it, and some run is still training.
    fn compact(&mut self) {
        let keep = self.member_flags(RunState::active);
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
        self.watch.retain(&keep);
        self.eval.retain(&keep);
        self.batches.retain(&keep);
        let mut flags = keep.iter();
        self.members
            .retain(|_| *flags.next().expect("one flag per member"));
    }

    /// The runs' results and kept checkpoints, read back as formulas.
    pub fn finish(self) -> Vec<TrainedRun<M>> {
        let baselines = random_init_extrapolation_mse::<M>(&self.data, &self.config, &self.device);
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let steps_per_second = self.step as f64 / self.step_seconds.max(f64::MIN_POSITIVE);
        let total = self.runs.len();
        let mut models = self.dropped;
        for (k, &r) in self.members.iter().enumerate() {
            models[r] = Some(self.best.member(k));
        }
        let (config, device) = (&self.config, &self.device);
        let finished = self.runs.into_iter().zip(self.data).zip(baselines);
        let finished = finished.zip(models).zip(self.polish_rows);
        finished
            .map(|((((run, data), baseline), model), polish_rows)| {
                let mut model = model.expect("every run has a checkpoint");
                let mut result = run.result(&data, config, baseline);
                if polish_rows.is_some() || config.snap {
                    result.keep_plain();
                }
                if let Some(rows) = polish_rows {
                    model = result.polish(model, &rows, &data, device);
                }
                if config.snap {
                    model = result.snap(model, &data, device);
                }
                result.readback(Readback::new(&model, &data, device));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, ModelKind, Operation, ReferenceTask, Task};
    use burn_nalu::internals::values;

    /// A stalled iNALU run restarts to weights drawn from a generator of its own seed and the
    /// evaluation: the same bits in a population of five as alone, whatever the population
    /// draws for its other runs, and not the weights it had.
    #[test]
    fn a_restart_redraws_each_run_from_its_own_seed() {
        let device = Device::default();
        // A learning rate too small to move the loss: every run stalls at the first check,
        // evaluation 10 (step 100, the last), and restarts there.
        let config = TrainConfig {
            budget: Budget::Steps(100),
            eval_every: Some(10),
            lr: 1e-12,
            ..TrainConfig::recipe(ModelKind::Inalu, Operation::Mul)
        };
        let trained = |seeds: std::ops::Range<u64>| {
            let data = seeds.map(|s| ReferenceTask::default().data(Operation::Mul, s));
            let mut trainer = Trainer::new(data.collect(), &config, &device).unwrap();
            let initial = trainer.model.clone();
            while !trainer.is_done() {
                trainer.step();
            }
            assert!(
                trainer.runs.iter().all(|r| r.restarts == 1),
                "one restart each"
            );
            (initial, trainer.model)
        };
        let bits = |m: &LabModel| -> Vec<Vec<f64>> {
            (values(m).into_iter())
                .map(|t| t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap())
                .collect()
        };
        let (initial, together) = trained(0..5);
        for k in 0..5 {
            let (_, alone) = trained(k as u64..k as u64 + 1);
            let fresh = bits(&together.member(k));
            assert!(
                fresh == bits(&alone.member(0)),
                "seed {k}: not its weights alone"
            );
            assert!(
                fresh != bits(&initial.member(k)),
                "seed {k} kept its weights"
            );
        }
    }
}
