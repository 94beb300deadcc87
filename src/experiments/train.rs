//! The training loop: mini-batch MSE training with model selection on the validation split.

use core::fmt;
use core::str::FromStr;
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::model::{ModelKind, StaticToyModel, mse};
use super::readback::Readback;
use super::{Operation, Protocol, StaticToyData};
use crate::inalu::StallDetector;
use crate::optim::{FastRmsProp, FastRmsPropConfig};
use crate::{ConfigError, RegularizerSchedule};

/// The optimizer, with Keras's defaults (the reference's framework), not Burn's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam, betas 0.9 / 0.999, epsilon 1e-7.
    Adam,
    /// RMSProp, rho 0.9, epsilon 1e-7, no momentum ([`FastRmsProp`](crate::optim::FastRmsProp)).
    RmsProp,
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::RmsProp => "rmsprop",
        })
    }
}

impl FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "adam" => Ok(OptimizerKind::Adam),
            "rmsprop" => Ok(OptimizerKind::RmsProp),
            _ => Err(format!(
                "unknown optimizer '{s}' (expected adam or rmsprop)"
            )),
        }
    }
}

/// Everything that defines one training run besides the data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainConfig {
    /// The stack of units to train.
    pub model: ModelKind,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// Number of epochs (passes over the training split).
    pub epochs: usize,
    /// Mini-batch size; the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Seeds the initial weights and the shuffling.
    pub seed: u64,
    /// Clip the gradient to this global L2 norm before each step; `None`: no clipping.
    pub clip_norm: Option<f32>,
    /// Adds `λ(step) · Var(y_train) ·` the stack's sparsity regulariser to the loss; `None`: no
    /// regulariser. Scaling by the variance of the training targets lets one `λ` serve tasks
    /// whose MSE differ by 10⁵ (`a / b` against `a · b`).
    pub regularizer: Option<RegularizerSchedule>,
    /// Restart from fresh weights when the loss stalls (iNALU's strategy; see
    /// [`StallDetector`]): checked every 10 epochs over at least 10 epochs of step losses,
    /// while the loss is above 1.
    pub restart_on_stall: bool,
}

impl TrainConfig {
    /// The Keras reference's setup for `op`: RMSProp with its per-task learning rate and epoch
    /// count, batch 64, two hidden units, no clipping.
    pub fn reference(op: Operation, seed: u64) -> Self {
        let recipe = op.reference_recipe();
        Self {
            model: ModelKind::Nalu,
            optimizer: OptimizerKind::RmsProp,
            lr: recipe.lr,
            epochs: recipe.epochs,
            batch_size: 64,
            hidden: 2,
            seed,
            clip_norm: None,
            regularizer: None,
            restart_on_stall: false,
        }
    }

    /// This crate's recipe for training `model` on `op`: the reference's for NALU and NAC; for
    /// NAU/NMU and the NPUs the settings that did best in a sweep on this task (README,
    /// "Beyond NALU"): Adam 0.01, 1000 epochs, the regulariser (λ = 0.1) ramped in over steps
    /// 4000 to 8000; for iNALU its authors' recipe.
    pub fn recipe(model: ModelKind, op: Operation, seed: u64) -> Self {
        let reference = Self::reference(op, seed);
        let ramp = |lambda, start, end| Some(RegularizerSchedule { lambda, start, end });
        let adam = Self {
            model,
            optimizer: OptimizerKind::Adam,
            lr: 0.01,
            epochs: 1000,
            regularizer: ramp(0.1, 4000, 8000),
            ..reference
        };
        match model {
            ModelKind::Nalu | ModelKind::Nac => Self { model, ..reference },
            ModelKind::NauNmu | ModelKind::Npu => adam,
            // A square root needs W_re = ½, which the regulariser resists: a larger step
            // gets there first.
            ModelKind::RealNpu if op == Operation::Sqrt => Self { lr: 0.03, ..adam },
            ModelKind::RealNpu => adam,
            // The iNALU authors' recipe: RMSProp 0.01, regulariser on after 10 epochs,
            // restarts when the loss stalls.
            ModelKind::Inalu => Self {
                model,
                lr: 0.01,
                epochs: 500,
                regularizer: ramp(1.0, 160, 160),
                restart_on_stall: true,
                ..reference
            },
        }
    }

    /// Checks that sizes are at least 1 and the learning rate and clip norm positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_positive("TrainConfig", "lr", self.lr)?;
        ConfigError::check_size("TrainConfig", "epochs", self.epochs)?;
        ConfigError::check_size("TrainConfig", "batch_size", self.batch_size)?;
        ConfigError::check_size("TrainConfig", "hidden", self.hidden)?;
        if let Some(norm) = self.clip_norm {
            ConfigError::check_positive("TrainConfig", "clip_norm", norm as f64)?;
        }
        match self.regularizer {
            Some(r) if !(r.lambda.is_finite() && r.lambda >= 0.0) => Err(ConfigError::new(
                "TrainConfig",
                "regularizer.lambda",
                format!("must be finite and at least 0, got {}", r.lambda),
            )),
            _ => Ok(()),
        }
    }

    /// The optimizer this config describes, with Keras's defaults (see [`OptimizerKind`]) and
    /// the configured gradient clipping.
    pub fn optimizer(&self) -> RunOptimizer {
        let clip = self.clip_norm.map(GradientClippingConfig::Norm);
        match self.optimizer {
            OptimizerKind::Adam => RunOptimizer::Burn(
                AdamConfig::new()
                    .with_beta_1(0.9)
                    .with_beta_2(0.999)
                    .with_epsilon(1e-7)
                    .with_grad_clipping(clip)
                    .init(),
            ),
            OptimizerKind::RmsProp => RunOptimizer::RmsProp(
                FastRmsPropConfig::new()
                    .with_rho(0.9)
                    .with_epsilon(1e-7)
                    .with_grad_clipping(clip)
                    .init(),
            ),
        }
    }
}

/// The optimizer of a run: Burn's `ModuleOptimizer` (Adam) or [`FastRmsProp`].
pub enum RunOptimizer {
    /// A Burn optimizer.
    Burn(ModuleOptimizer),
    /// This crate's RMSProp.
    RmsProp(FastRmsProp),
}

impl RunOptimizer {
    /// One update of `module` from `grads` with learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        match self {
            RunOptimizer::Burn(optim) => optim.step(lr, module, grads),
            RunOptimizer::RmsProp(optim) => optim.step(lr, module, grads),
        }
    }
}

/// MSE on each split after one epoch (epoch 0: the initial weights).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// Epochs completed.
    pub epoch: usize,
    /// MSE on the training split.
    pub train_mse: f64,
    /// MSE on the validation split (interpolation).
    pub valid_mse: f64,
    /// MSE on the extrapolation split.
    pub extrapolation_mse: f64,
}

/// Where a run stopped because the loss stopped being finite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The epoch in which it happened (1-based).
    pub epoch: usize,
    /// The training step at which it happened (1-based, counted over the whole run).
    pub step: usize,
    /// The offending loss value (NaN or infinite).
    pub loss: f64,
}

/// The outcome of one run; metrics are those of the checkpoint with the lowest validation MSE.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// The stack of units.
    pub model: ModelKind,
    /// The task.
    pub task: Operation,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The seed of the data, the initial weights and the shuffling.
    pub seed: u64,
    /// Learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Gradient-norm clip, if any.
    pub clip_norm: Option<f32>,
    /// Epochs completed (fewer than asked when the run diverged).
    pub epochs_run: usize,
    /// The epoch of the kept checkpoint (0: the initial weights).
    pub best_epoch: usize,
    /// Training MSE of the kept checkpoint.
    pub train_mse: f64,
    /// Validation MSE of the kept checkpoint.
    pub valid_mse: f64,
    /// Extrapolation MSE of the kept checkpoint.
    pub extrapolation_mse: f64,
    /// Extrapolation MSE of the same architecture at random initialisation, averaged over
    /// [`BASELINE_INITS`] seeded initialisations.
    pub random_init_extrapolation_mse: f64,
    /// `100 × extrapolation_mse / random_init_extrapolation_mse` (the paper's Table 1 measure:
    /// 0 is perfect, 100 no better than a random network).
    pub normalized_extrapolation_error: f64,
    /// The data generator and success criterion.
    pub protocol: Protocol,
    /// Success threshold ([`StaticToyData::success_threshold`]).
    pub success_threshold: f64,
    /// Whether `extrapolation_mse < success_threshold`.
    pub success: bool,
    /// The first step after which the extrapolation MSE was below the threshold (checked at
    /// the end of every epoch), whether or not the kept checkpoint is from then.
    pub solved_at_step: Option<usize>,
    /// The learned formula and its errors.
    #[serde(flatten)]
    pub readback: Readback,
    /// Set when the loss turned NaN or infinite; training stopped there.
    pub diverged: Option<Divergence>,
    /// Restarts from fresh weights after a stalled loss (iNALU's strategy).
    pub restarts: usize,
    /// Training steps taken.
    pub steps: usize,
    /// Wall-clock seconds of the whole run, evaluation included.
    pub wall_seconds: f64,
    /// Training steps (forward, loss, backward, optimizer) per second, evaluation excluded.
    pub steps_per_second: f64,
    /// Metrics after every epoch, starting at epoch 0 (not written to JSON).
    #[serde(skip)]
    pub history: Vec<EpochMetrics>,
}

/// A finished run: its result and the kept checkpoint (on the plain, non-autodiff device).
#[derive(Debug)]
pub struct TrainedRun {
    /// The result.
    pub result: RunResult,
    /// The weights with the lowest validation MSE.
    pub model: StaticToyModel,
}

/// Number of random initialisations averaged for the normalised error.
pub const BASELINE_INITS: u64 = 10;
/// Seeds of those initialisations: fixed, so every run of a task shares the same baseline model.
const BASELINE_SEED: u64 = 1_000_000;

/// Mean extrapolation MSE of [`BASELINE_INITS`] freshly initialised models.
pub fn random_init_extrapolation_mse(
    data: &StaticToyData,
    model: ModelKind,
    hidden: usize,
    device: &Device,
) -> f64 {
    let (x, y) = data.extrapolation.tensors(device);
    let total: f64 = (0..BASELINE_INITS)
        .map(|k| {
            mse(
                &StaticToyModel::init(model, hidden, BASELINE_SEED + k, device),
                x.clone(),
                y.clone(),
            )
        })
        .sum();
    total / BASELINE_INITS as f64
}

/// The three evaluation splits as tensors on the plain device.
struct EvalSets {
    sets: [(Tensor<2>, Tensor<2>); 3],
}

impl EvalSets {
    fn new(data: &StaticToyData, device: &Device) -> Self {
        Self {
            sets: [&data.train, &data.valid, &data.extrapolation].map(|s| s.tensors(device)),
        }
    }

    fn evaluate(&self, model: &StaticToyModel, epoch: usize) -> EpochMetrics {
        let [train, valid, extra] = self
            .sets
            .each_ref()
            .map(|(x, y)| mse(model, x.clone(), y.clone()));
        EpochMetrics {
            epoch,
            train_mse: train,
            valid_mse: valid,
            extrapolation_mse: extra,
        }
    }
}

/// What a run has done so far.
struct Progress {
    history: Vec<EpochMetrics>,
    steps: usize,
    diverged: Option<Divergence>,
    restarts: usize,
    /// Seconds spent in training steps, evaluation excluded.
    step_seconds: f64,
    /// Step losses for the restart rule, when the run uses it.
    stall: Option<StallDetector>,
    /// `Var(y_train)`, the scale of the regulariser's weight.
    target_variance: f64,
}

/// Trains a [`StaticToyModel`] on `data` and keeps the checkpoint with the lowest validation MSE.
///
/// `device` is a plain device; training runs on its autodiff twin. Each step minimises the MSE
/// plus the scheduled regulariser, then clamps the units' constrained parameters. `on_epoch`
/// sees the metrics after every epoch (for progress reporting). A step whose loss is NaN or
/// infinite stops the run; the result records where, and keeps the best checkpoint so far.
///
/// # Panics
///
/// On an invalid `config` (see [`TrainConfig::validate`]).
pub fn train(
    data: &StaticToyData,
    config: &TrainConfig,
    device: &Device,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> TrainedRun {
    if let Err(err) = config.validate() {
        panic!("{err}");
    }
    let started = Instant::now();
    let ad = device.clone().autodiff();
    let mut model = StaticToyModel::init(config.model, config.hidden, config.seed, &ad);
    let mut optim = config.optimizer();
    let (x_train, y_train) = data.train.tensors(&ad);
    let eval = EvalSets::new(data, device);
    let mut shuffle_rng = StdRng::seed_from_u64(config.seed ^ 0x5EED_5EED_5EED_5EED);
    let mut order: Vec<i64> = (0..data.train.rows() as i64).collect();
    let steps_per_epoch = data.train.rows().div_ceil(config.batch_size);

    let initial = eval.evaluate(&model.valid(), 0);
    let mut best = (model.valid(), initial);
    let mut progress = Progress {
        history: vec![initial],
        steps: 0,
        diverged: None,
        restarts: 0,
        step_seconds: 0.0,
        stall: config
            .restart_on_stall
            .then(|| StallDetector::new(10, 10 * steps_per_epoch, 1.0)),
        target_variance: data.train.target_variance(),
    };
    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut shuffle_rng);
        let perm = Tensor::<1, Int>::from_data(TensorData::new(order.clone(), [order.len()]), &ad);
        let xs = x_train.clone().select(0, perm.clone());
        let ys = y_train.clone().select(0, perm);
        let bad_loss;
        (model, bad_loss) = train_epoch(model, &mut optim, xs, ys, config, &mut progress);
        progress.step_seconds += epoch_started.elapsed().as_secs_f64();
        if let Some(loss) = bad_loss {
            let step = progress.steps;
            progress.diverged = Some(Divergence { epoch, step, loss });
            break;
        }
        let metrics = eval.evaluate(&model.valid(), epoch);
        progress.history.push(metrics);
        on_epoch(&metrics);
        if metrics.valid_mse < best.1.valid_mse {
            best = (model.valid(), metrics);
        }
        if progress.stall.as_mut().is_some_and(|s| s.stalled(epoch)) {
            model = model.reinitialize();
            progress.restarts += 1;
        }
    }

    let (model, best_metrics) = best;
    let mut result = run_result(data, config, best_metrics, progress, device);
    result.solved_at_step = result
        .history
        .iter()
        .find(|m| m.extrapolation_mse < data.success_threshold)
        .map(|m| m.epoch * steps_per_epoch);
    result.readback = Readback::new(&model, data, device);
    result.wall_seconds = started.elapsed().as_secs_f64();
    TrainedRun { result, model }
}

/// One pass over `(xs, ys)` in mini-batches of `config.batch_size` (see [`train_step`]).
///
/// Stops before the update at the first loss that is NaN or infinite, and returns that loss.
fn train_epoch(
    mut model: StaticToyModel,
    optim: &mut RunOptimizer,
    xs: Tensor<2>,
    ys: Tensor<2>,
    config: &TrainConfig,
    progress: &mut Progress,
) -> (StaticToyModel, Option<f64>) {
    let rows = ys.dims()[0];
    for start in (0..rows).step_by(config.batch_size) {
        let len = config.batch_size.min(rows - start);
        let (x, y) = (
            xs.clone().narrow(0, start, len),
            ys.clone().narrow(0, start, len),
        );
        let lambda =
            config.regularizer.map_or(0.0, |r| r.weight(progress.steps)) * progress.target_variance;
        progress.steps += 1;
        let step = train_step(model, optim, x, y, config.lr, lambda);
        model = step.model;
        if !step.loss.is_finite() {
            return (model, Some(step.loss));
        }
        if let Some(stall) = progress.stall.as_mut() {
            stall.record(step.mse.into_scalar::<f64>());
        }
    }
    (model, None)
}

/// What one training step returns.
pub struct Step {
    /// The model after the step (unchanged when `loss` is not finite).
    pub model: StaticToyModel,
    /// The loss the step minimised, `MSE + λ·R`, read before the update.
    pub loss: f64,
    /// The MSE part of that loss, not yet read from the device.
    pub mse: Tensor<1>,
}

/// One training step on the batch `(x, y)`: the loss `MSE + λ·R` (`R`: the model's sparsity
/// regulariser, when it has one and `lambda > 0`), backward, an optimizer step with learning
/// rate `lr`, and the units' clamps. A loss that is NaN or infinite skips the update.
pub fn train_step(
    model: StaticToyModel,
    optim: &mut RunOptimizer,
    x: Tensor<2>,
    y: Tensor<2>,
    lr: f64,
    lambda: f64,
) -> Step {
    let err = model.forward(x).sub(y);
    let mse = err.clone().mul(err).mean();
    let loss = match model.regularization() {
        Some(reg) if lambda > 0.0 => mse.clone().add(reg.mul_scalar(lambda)),
        _ => mse.clone(),
    };
    let value = loss.clone().into_scalar::<f64>();
    if !value.is_finite() {
        return Step {
            model,
            loss: value,
            mse,
        };
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optim.step(lr, model, grads).project();
    Step {
        model,
        loss: value,
        mse,
    }
}

/// One static-toy training step on a fixed batch, repeatable: what the speed benchmarks time.
///
/// `Nalu(100 → 2)`, `Nalu(2 → 1)`, a batch of 64 random rows with `y = Σ x`, RMSProp (lr 0.01);
/// each [`ToyStep::step`] is one [`train_step`], the step [`train`] runs.
pub struct ToyStep {
    model: Option<StaticToyModel>,
    optim: RunOptimizer,
    x: Tensor<2>,
    y: Tensor<2>,
}

impl ToyStep {
    /// The model, optimizer and batch on the autodiff twin of `device`.
    pub fn new(device: &Device) -> Self {
        let ad = device.clone().autodiff();
        let config = TrainConfig::reference(Operation::Add, 0);
        let x = Tensor::<2>::random([64, 100], Distribution::Default, &ad);
        Self {
            model: Some(StaticToyModel::init(ModelKind::Nalu, 2, 0, &ad)),
            optim: config.optimizer(),
            y: x.clone().sum_dim(1),
            x,
        }
    }

    /// One training step; returns its loss.
    pub fn step(&mut self) -> f64 {
        let model = self.model.take().expect("a model between steps");
        let step = train_step(
            model,
            &mut self.optim,
            self.x.clone(),
            self.y.clone(),
            0.01,
            0.0,
        );
        self.model = Some(step.model);
        step.loss
    }
}

/// The result of a finished run whose kept checkpoint scored `best` (`wall_seconds` unset).
fn run_result(
    data: &StaticToyData,
    config: &TrainConfig,
    best: EpochMetrics,
    progress: Progress,
    device: &Device,
) -> RunResult {
    let baseline = random_init_extrapolation_mse(data, config.model, config.hidden, device);
    let success_threshold = data.success_threshold;
    RunResult {
        model: config.model,
        task: data.op,
        optimizer: config.optimizer,
        seed: config.seed,
        lr: config.lr,
        batch_size: config.batch_size,
        hidden: config.hidden,
        clip_norm: config.clip_norm,
        epochs_run: progress.history.len() - 1,
        best_epoch: best.epoch,
        train_mse: best.train_mse,
        valid_mse: best.valid_mse,
        extrapolation_mse: best.extrapolation_mse,
        random_init_extrapolation_mse: baseline,
        normalized_extrapolation_error: 100.0 * best.extrapolation_mse / baseline,
        protocol: data.protocol,
        success_threshold,
        success: best.extrapolation_mse < success_threshold,
        solved_at_step: None,
        readback: Readback::default(),
        diverged: progress.diverged,
        restarts: progress.restarts,
        steps: progress.steps,
        wall_seconds: 0.0,
        steps_per_second: progress.steps as f64 / progress.step_seconds.max(f64::MIN_POSITIVE),
        history: progress.history,
    }
}
