//! Training settings, and each model's recipe for each task.

use core::fmt;
use core::str::FromStr;

use burn::optim::GradientsParams;
use serde::{Deserialize, Serialize};

use super::names::parse_name;
use super::stacks::{InitScheme, ModelKind};
use super::task::{Operation, TaskData};
use burn_nalu::optim::{FastAdam, FastAdamConfig, FastRmsProp, FastRmsPropConfig, OptimizerState};
use burn_nalu::{ConfigError, L1Schedule, RegularizerSchedule};

/// The optimizer ([`FastAdam`] or [`FastRmsProp`]), with the decays of Keras's and PyTorch's
/// defaults (not Burn's) and [`TrainConfig::epsilon`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam, betas 0.9 / 0.999.
    Adam,
    /// RMSProp, rho 0.9, no momentum.
    RmsProp,
}

impl OptimizerKind {
    /// Both optimizers.
    pub const ALL: [OptimizerKind; 2] = [OptimizerKind::Adam, OptimizerKind::RmsProp];

    /// The name results and the command line use (`adam`, `rmsprop`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::RmsProp => "rmsprop",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, "optimizer", &OptimizerKind::ALL, OptimizerKind::name)
    }
}

/// What the early stop ([`TrainConfig::early_stop_patience`]) asks of a run that has converged
/// on validation data and stopped improving, before it ends the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopRule {
    /// Nothing more: the plateau ends the run. It cost successes: a run a few ε from exact
    /// weights fits validation within its threshold long before it extrapolates within its
    /// own, and stopping it there fails it (lab README, "The whole table"). Files and
    /// checkpoints written before the rule was recorded ran with it.
    #[default]
    Plateau,
    /// Also the run's weights must fit the validation rows no worse than the same weights
    /// snapped to their discrete values ([`ArithmeticUnit::snap`](burn_nalu::ArithmeticUnit::snap)):
    /// training has nothing left to gain, whether the weights are exact to f32 or at an optimum
    /// the snap cannot reach. A run still creeping towards exact weights, whose snapped
    /// weights fit better, trains on.
    Snapped,
}

impl StopRule {
    /// Both rules.
    pub const ALL: [StopRule; 2] = [StopRule::Plateau, StopRule::Snapped];

    /// The name the command line uses (`plateau`, `snapped`).
    pub fn name(self) -> &'static str {
        match self {
            StopRule::Plateau => "plateau",
            StopRule::Snapped => "snapped",
        }
    }
}

/// How long a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// Passes over a task's fixed training rows.
    Epochs(usize),
    /// Optimizer steps.
    Steps(usize),
}

/// Everything that defines one training run besides the data and the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The stack of units to train.
    pub model: ModelKind,
    /// How the NAC and NALU weights are drawn.
    pub init: InitScheme,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f64,
    /// The optimizer's `ε` (Keras's 1e-7 in the reference recipes, PyTorch's 1e-8 in Madsen &
    /// Johansen's).
    pub epsilon: f64,
    /// How long to train.
    pub budget: Budget,
    /// Mini-batch size; the last batch of an epoch over fixed rows may be smaller.
    pub batch_size: usize,
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Clip each parameter's gradient to this L2 norm before each step (per member of a
    /// population); `None`: no clipping.
    pub clip_norm: Option<f32>,
    /// Clamp every gradient element to `[−v, v]` before each step (PyTorch's
    /// `clip_grad_value_`); `None`: no such clipping.
    #[serde(default)]
    pub clip_value: Option<f32>,
    /// Adds `λ(step) ·` the stack's sparsity regulariser (summed over its layers) to the loss;
    /// `None`: no regulariser.
    pub regularizer: Option<RegularizerSchedule>,
    /// Adds `β(step) · Σ|p|` over every parameter to the loss (per member of a population);
    /// `None`: no L1 penalty.
    #[serde(default)]
    pub l1: Option<L1Schedule>,
    /// Multiply `λ` by the variance of the run's training targets, so that one `λ` serves tasks
    /// whose MSE differ by 10⁵ (`a / b` against `a · b`): this crate's reference recipes do;
    /// Madsen & Johansen's do not.
    pub scale_regularizer: bool,
    /// Restart from fresh weights when the loss stalls (iNALU's strategy; see
    /// [`StallDetector`](burn_nalu::inalu::StallDetector)): checked every 10 evaluations over at least 10
    /// evaluation periods of step losses, while the loss is above 1.
    pub restart_on_stall: bool,
    /// Evaluate every this many steps; `None`: at the end of every epoch over fixed rows.
    pub eval_every: Option<usize>,
    /// Stop a run early once, after the regulariser's ramp has ended (after step 0 without a
    /// regulariser), its validation MSE is at most the validation threshold
    /// ([`TaskData::valid_threshold`](super::TaskData::valid_threshold)) and has not improved
    /// by 1% for this many evaluations: converged, and done converging; what else it asks is
    /// [`TrainConfig::early_stop_rule`]. `None`: train the whole budget. Reads no
    /// extrapolation data.
    pub early_stop_patience: Option<usize>,
    /// What the early stop asks beyond the plateau.
    #[serde(default)]
    pub early_stop_rule: StopRule,
    /// Stop a run whose best validation MSE is more than 10 times the validation threshold
    /// once, after the regulariser's ramp has ended, it has not improved by 1% for this many
    /// evaluations, nor for the later half of all its evaluations: a run on a plateau far from
    /// a solution, given up ([`RunResult::gave_up`](super::RunResult::gave_up)). `None`: such
    /// runs train the whole budget. Reads no extrapolation data.
    #[serde(default)]
    pub give_up_patience: Option<usize>,
    /// After training, also try each run's kept checkpoint with its weights snapped to their
    /// discrete values ([`ArithmeticUnit::snap`](burn_nalu::ArithmeticUnit::snap)), and keep the
    /// snapped weights when their validation MSE is no worse. Reported beside the plain result,
    /// never in its place.
    pub snap: bool,
    /// After training, polish each run's kept checkpoint with Levenberg–Marquardt on its
    /// training rows (in f64; [`polish`](super::polish)), and keep the polished weights when
    /// their validation MSE is lower. The run's metrics are then those of the polished weights,
    /// and its label says so: polished runs are never summarised with plain ones.
    #[serde(default)]
    pub polish: bool,
    /// Initialisations trained per seed (on the seed's data, as one population); each seed keeps
    /// the one with the lowest validation MSE, never reading the extrapolation split. 1: the
    /// plain single-initialisation run.
    #[serde(default = "one")]
    pub inits_per_seed: usize,
}

/// Serde's default for counts that were 1 before they were recorded.
pub(super) fn one() -> usize {
    1
}

impl TrainConfig {
    /// The Keras reference's setup for `op`: NALU, RMSProp with its per-task learning rate and
    /// epoch count (add 0.1/500, sub 0.2/1000, mul 0.1/500, div 0.02/1000, square 0.1/2000,
    /// sqrt 0.01/2000), batch 64, two hidden units, no clipping.
    pub fn reference(op: Operation) -> Self {
        let (lr, epochs) = match op {
            Operation::Add => (0.1, 500),
            Operation::Sub => (0.2, 1000),
            Operation::Mul => (0.1, 500),
            Operation::Div => (0.02, 1000),
            Operation::Square => (0.1, 2000),
            Operation::Sqrt => (0.01, 2000),
        };
        Self {
            model: ModelKind::Nalu,
            init: InitScheme::Reference,
            optimizer: OptimizerKind::RmsProp,
            lr,
            epsilon: 1e-7,
            budget: Budget::Epochs(epochs),
            batch_size: 64,
            hidden: 2,
            clip_norm: None,
            clip_value: None,
            regularizer: None,
            l1: None,
            scale_regularizer: false,
            restart_on_stall: false,
            eval_every: None,
            early_stop_patience: None,
            early_stop_rule: StopRule::Snapped,
            give_up_patience: None,
            snap: false,
            polish: false,
            inits_per_seed: 1,
        }
    }

    /// This crate's recipe for `model` on `op` of the reference task: the reference's for
    /// NALU, NAC and NAC•; for the NAU-based stacks and the NPUs the settings that did best in a
    /// sweep on this task (README, "Beyond NALU"): Adam 0.01, 1000 epochs, the regulariser
    /// (λ = 0.1 times the variance of the training targets) ramped in over steps 4000 to 8000
    /// (NAU → NMU: 4000 epochs, ramp over steps 40,000 to 60,000; the NMRU's with its authors'
    /// gradient clipping to norm 1); for iNALU its authors' recipe.
    pub fn recipe(model: ModelKind, op: Operation) -> Self {
        let reference = Self::reference(op);
        let ramp = |lambda, start, end| Some(RegularizerSchedule { lambda, start, end });
        let adam = Self {
            model,
            optimizer: OptimizerKind::Adam,
            lr: 0.01,
            budget: Budget::Epochs(1000),
            regularizer: ramp(0.1, 4000, 8000),
            scale_regularizer: true,
            ..reference
        };
        match model {
            ModelKind::Nalu | ModelKind::Nac | ModelKind::NacMul => Self { model, ..reference },
            ModelKind::SingleNalu
            | ModelKind::SingleGnalu
            | ModelKind::SingleDmu
            | ModelKind::DmuFrozenSum
            | ModelKind::DmuFrozenDiff
            | ModelKind::Dmu
            | ModelKind::SingleNac
            | ModelKind::SingleNacMul => Self { model, ..reference },
            ModelKind::NaluRnn | ModelKind::NacRnn => Self { model, ..reference },
            ModelKind::NaluCell | ModelKind::NacCell | ModelKind::NacMulCell => {
                Self { model, ..reference }
            }
            ModelKind::NauCell | ModelKind::NmuCell => adam,
            ModelKind::NauRnn
            | ModelKind::NauNmuRnn
            | ModelKind::NpuRnn
            | ModelKind::RealNpuRnn
            | ModelKind::NaiveNpuRnn
            | ModelKind::InaluRnn => adam,
            ModelKind::Nau | ModelKind::Npu | ModelKind::SingleNau | ModelKind::SingleNpu => adam,
            // At the start every NAU weight drifts to ½ and the NMU squares ((a + b)/2)², which
            // fits a·b to within (a − b)²/4: a saddle that training leaves only slowly. The
            // regulariser, at ½ pushing each weight to 0 or 1 at random, must wait until it has.
            ModelKind::NauNmu | ModelKind::NauSnmu | ModelKind::Snmu | ModelKind::SingleNmu => {
                Self {
                    budget: Budget::Epochs(4000),
                    regularizer: ramp(0.1, 40_000, 60_000),
                    ..adam
                }
            }
            // A square root needs W_re = ½, which the regulariser resists: a larger step
            // gets there first.
            ModelKind::RealNpu if op == Operation::Sqrt => Self { lr: 0.03, ..adam },
            ModelKind::RealNpu | ModelKind::NaiveNpu => adam,
            ModelKind::NauNru | ModelKind::Nru | ModelKind::SingleRealNpu => adam,
            ModelKind::RealNpuMistry => adam,
            // DuJardin's learning rate; the unit has no regulariser.
            ModelKind::Hill | ModelKind::HillExp | ModelKind::HillAdd | ModelKind::HillMul => {
                Self {
                    lr: 0.1,
                    regularizer: None,
                    ..adam
                }
            }
            // The NMRU as its authors ran it: gradients clipped to norm 1.
            ModelKind::NauNmru | ModelKind::Nmru => Self {
                clip_norm: Some(1.0),
                ..adam
            },
            // The iNALU authors' recipe: RMSProp 0.01, regulariser on after 10 epochs,
            // restarts when the loss stalls.
            ModelKind::Inalu | ModelKind::SingleInalu => Self {
                model,
                lr: 0.01,
                budget: Budget::Epochs(500),
                regularizer: ramp(1.0, 160, 160),
                scale_regularizer: true,
                restart_on_stall: true,
                ..reference
            },
        }
    }

    /// The stack and recipe this crate recommends for `op` of the reference task (for Madsen &
    /// Johansen's task, [`TrainConfig::madsen_recommended`]): NAC for `+` and `−` and NAU → NMU
    /// for `z²`, which learn them in every seed alone; for `×` NAU → NMU, and for `÷` and `√`
    /// the naive NPU (NAU → RealNPU with its gates held open), each seed trained from 8
    /// initialisations kept by validation MSE, then polished and snapped where that does
    /// better on validation (the recipes of [`burn_nalu::recipe`]). One initialisation alone
    /// leaves `×` in the `((a + b)/2)²` saddle in about a third of the seeds (its validation
    /// MSE 3 to 17, which the choice sees) and the NPU on a ratio of mixed sums in about half.
    pub fn recommended(op: Operation) -> Self {
        let recipe = |model| Self {
            inits_per_seed: 8,
            polish: true,
            snap: true,
            ..Self::recipe(model, op)
        };
        match op {
            Operation::Add | Operation::Sub => Self::recipe(ModelKind::Nac, op),
            Operation::Square => Self::recipe(ModelKind::NauNmu, op),
            Operation::Mul => recipe(ModelKind::NauNmu),
            Operation::Div | Operation::Sqrt => recipe(ModelKind::NaiveNpu),
        }
    }

    /// The stack and recipe this crate recommends for `op` of Madsen & Johansen's task: the one
    /// that solved it in the most seeds there (README, "Madsen & Johansen's protocol"). Their
    /// NAU → NAU for `+` and `−` and NAU → NMU for `×` and `z²`, on their recipe
    /// ([`TrainConfig::madsen`]), `×`'s kept checkpoint polished and snapped (the polish lifts
    /// the runs their recipe leaves far from `a·b`); for `÷` and `√` the naive NPU (NAU → RealNPU with its gates
    /// held open): Adam 0.01 for 60,000 steps without the regulariser, then the kept
    /// checkpoint polished ([`TrainConfig::polish`]) and snapped ([`TrainConfig::snap`]), each
    /// seed the best on validation of 16 initialisations for `÷` and 4 for `√` (one alone
    /// solves about half the seeds: the others settle on a power of a ratio of mixed sums,
    /// `((α·a + β·b)/(γ·a + δ·b))^p`, that fits the training range only; 8 left `÷` unlearned
    /// in 2 of 100 seeds).
    pub fn madsen_recommended(op: Operation) -> Self {
        let npu = |inits_per_seed| Self {
            lr: 0.01,
            budget: Budget::Steps(60_000),
            regularizer: None,
            snap: true,
            polish: true,
            inits_per_seed,
            ..Self::madsen(ModelKind::NaiveNpu)
        };
        match op {
            Operation::Add | Operation::Sub => Self::madsen(ModelKind::Nau),
            // Polished and snapped: the polish lifts the runs that end far from `a·b`.
            Operation::Mul => Self {
                polish: true,
                snap: true,
                ..Self::madsen(ModelKind::NauNmu)
            },
            Operation::Square => Self::madsen(ModelKind::NauNmu),
            Operation::Div => npu(16),
            Operation::Sqrt => npu(4),
        }
    }

    /// Madsen & Johansen's recipe for `model` (the same for every operation): Adam (lr 1e-3,
    /// PyTorch's ε = 1e-8), batch 128, up to 5,000,000 steps, evaluation every 1000 steps, their
    /// initialisation, no clipping; the regulariser unscaled, λ = 0.01 ramped over steps 5,000
    /// to 50,000 for NAU → NAU, λ = 10 ramped over steps 1,000,000 to 2,000,000 for every other
    /// stack with a regulariser (their flags are global: both layers, every unit). A run stops
    /// early once, after the ramp, its validation MSE is at the validation threshold and has
    /// not improved by 1% for 100 evaluations (100,000 steps), and its weights fit validation
    /// no worse than snapped ([`StopRule::Snapped`]). The DMU (not theirs) clips gradients to
    /// norm 0.01 as its authors do and is kept discrete when that does no worse on validation.
    pub fn madsen(model: ModelKind) -> Self {
        let (lambda, start, end) = match model {
            ModelKind::Nau => (0.01, 5_000, 50_000),
            _ => (10.0, 1_000_000, 2_000_000),
        };
        let regularizer =
            model
                .has_regularizer()
                .then_some(RegularizerSchedule { lambda, start, end });
        use ModelKind::{DmuFrozenDiff, DmuFrozenSum, SingleDmu};
        let dmu = matches!(
            model,
            ModelKind::Dmu | SingleDmu | DmuFrozenSum | DmuFrozenDiff
        );
        Self {
            model,
            init: InitScheme::Madsen,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            epsilon: 1e-8,
            budget: Budget::Steps(5_000_000),
            batch_size: 128,
            hidden: 2,
            clip_norm: dmu.then_some(0.01),
            clip_value: None,
            regularizer,
            l1: None,
            scale_regularizer: false,
            restart_on_stall: false,
            eval_every: Some(1000),
            early_stop_patience: Some(100),
            early_stop_rule: StopRule::Snapped,
            give_up_patience: None,
            snap: dmu,
            polish: false,
            inits_per_seed: 1,
        }
    }

    /// Mistry, Farrahi & Hare's recipe for `model` on their single-module task with `inputs`
    /// inputs (nalm-division's `sltr-in2.sh` and `in10-*.sh`, nalm-benchmark's
    /// `single_layer_benchmark.sh` for the modules of their Primer): Adam (PyTorch's settings,
    /// ε = 1e-8), batch 128, 50,000 steps (2 inputs) or 100,000 (more), evaluation every 1,000
    /// steps, the model of the best validation step, no early stop; the regulariser λ = 10,
    /// unscaled, ramped over steps 20,000 to 35,000 (2 inputs) or 50,000 to 75,000. The
    /// learning rate is 1e-3, but the NMRU's 1e-2 with gradient-norm clipping to 1 and the
    /// NRU's 1 with 2 inputs; the NAU's λ 0.01; the iNALU's gradients clipped to ±0.1, its
    /// restarts, and its regulariser from step 10,000 (theirs only while the interpolation
    /// error is below 1); the NPU and RealNPU (the Primer's) at 5e-3 with no regulariser but
    /// an L1 penalty growing ×10 every 10,000 steps, from 1e-7 to 1e-5 (1e-9 to 1e-7 for `÷`);
    /// the modified RealNPU its two regularisers at λ = 1 and that L1 penalty from 1e-9 to
    /// 1e-7; the Hill Space unit (not theirs) DuJardin's 0.1; the DMU (not theirs) its
    /// authors' 1e-3 with gradient-norm clipping to 0.01, kept discrete when that does no worse
    /// on validation.
    pub fn mistry(model: ModelKind, op: Operation, inputs: usize) -> Self {
        use ModelKind::*;
        let two = inputs == 2;
        let (steps, start, end) = match two {
            true => (50_000, 20_000, 35_000),
            false => (100_000, 50_000, 75_000),
        };
        let (lr, clip_norm) = match model {
            Nmru | NauNmru => (1e-2, Some(1.0)),
            Nru | NauNru if two => (1.0, None),
            SingleRealNpu | RealNpu | RealNpuMistry | SingleNpu | Npu => (5e-3, None),
            HillAdd | HillMul => (0.1, None),
            SingleDmu | DmuFrozenSum | DmuFrozenDiff | Dmu => (1e-3, Some(0.01)),
            _ => (1e-3, None),
        };
        let l1 = |start: f64, end: f64| L1Schedule {
            start,
            end,
            every: 10_000,
            growth: 10.0,
        };
        let (lambda, l1) = match model {
            RealNpuMistry => (1.0, Some(l1(1e-9, 1e-7))),
            SingleRealNpu | RealNpu | SingleNpu | Npu if op == Operation::Div => {
                (0.0, Some(l1(1e-9, 1e-7)))
            }
            SingleRealNpu | RealNpu | SingleNpu | Npu => (0.0, Some(l1(1e-7, 1e-5))),
            SingleNau => (0.01, None),
            _ => (10.0, None),
        };
        // nalm-benchmark adds the iNALU's (with its 1/20, as the crate's) after step 10,000,
        // while the interpolation error is below 1 (a condition this trainer lacks).
        let (start, end, lambda) = match model {
            SingleInalu => (10_000, 10_000, 1.0),
            _ => (start, end, lambda),
        };
        let regularizer = (model.has_regularizer() && lambda > 0.0)
            .then_some(RegularizerSchedule { lambda, start, end });
        let inalu = model == SingleInalu;
        Self {
            lr,
            clip_norm,
            // The DMU's authors evaluate it discrete: its snap.
            snap: matches!(model, SingleDmu | DmuFrozenSum | DmuFrozenDiff | Dmu),
            clip_value: inalu.then_some(0.1),
            restart_on_stall: inalu,
            budget: Budget::Steps(steps),
            regularizer,
            l1,
            early_stop_patience: None,
            ..Self::madsen(model)
        }
    }

    /// This crate's recipe for `model` on the recurrent task ([`RecurrentTask`](super::RecurrentTask)):
    /// Adam (lr 1e-3, ε 1e-8, as `stable-nalu`'s recurrent experiment), batch 128, 50,000
    /// steps, evaluation every 1,000, Madsen & Johansen's initialisation and regulariser weights
    /// (λ = 0.01 for the NAU model, 10 for the others) ramped in over steps 25,000 to 45,000,
    /// no early stop.
    pub fn recurrent(model: ModelKind) -> Self {
        let lambda = match model {
            ModelKind::NauRnn => 0.01,
            _ => 10.0,
        };
        let regularizer = (model.has_regularizer()).then_some(RegularizerSchedule {
            lambda,
            start: 25_000,
            end: 45_000,
        });
        Self {
            budget: Budget::Steps(50_000),
            regularizer,
            early_stop_patience: None,
            ..Self::madsen(model)
        }
    }

    /// Madsen & Johansen's recipe for `model` on their sequential arithmetic
    /// ([`SequentialTask`](super::SequentialTask); `stable-nalu`'s `sequential_mnist.py`):
    /// Adam (PyTorch's defaults: lr 1e-3, ε 1e-8), batch 64, their initialisation, the
    /// regulariser λ = 10 ramped in linearly over steps 10,000 to 100,000, evaluation every
    /// 1,000 steps, no early stop. Their budget is 1,000 epochs of MNIST sequences (about 86,000
    /// steps for sums of 10 digits, 430,000 for products of 2); this one is 100,000 steps.
    pub fn sequential(model: ModelKind) -> Self {
        let regularizer = (model.has_regularizer()).then_some(RegularizerSchedule {
            lambda: 10.0,
            start: 10_000,
            end: 100_000,
        });
        Self {
            budget: Budget::Steps(100_000),
            batch_size: 64,
            regularizer,
            early_stop_patience: None,
            ..Self::madsen(model)
        }
    }

    /// `(first step, patience)` of the early stop, when it is on.
    pub fn early_stop(&self) -> Option<(usize, usize)> {
        self.early_stop_patience
            .map(|patience| (self.ramp_end(), patience))
    }

    /// `(after, patience)` of the give-up rule ([`TrainConfig::give_up_patience`]).
    pub fn give_up(&self) -> Option<(usize, usize)> {
        self.give_up_patience
            .map(|patience| (self.ramp_end(), patience))
    }

    /// The step from which the stopping rules may fire: the regulariser's ramp's end (1
    /// without a regulariser).
    fn ramp_end(&self) -> usize {
        self.regularizer.map_or(1, |r| r.end.max(1))
    }

    /// Checks sizes, learning rate, clip norm and the regulariser; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field, v| ConfigError::check_size("TrainConfig", field, v);
        ConfigError::check_positive("TrainConfig", "lr", self.lr)?;
        ConfigError::check_positive("TrainConfig", "epsilon", self.epsilon)?;
        match self.budget {
            Budget::Epochs(n) => check("budget.epochs", n)?,
            Budget::Steps(n) => check("budget.steps", n)?,
        }
        check("batch_size", self.batch_size)?;
        check("hidden", self.hidden)?;
        check("inits_per_seed", self.inits_per_seed)?;
        if let Some(every) = self.eval_every {
            check("eval_every", every)?;
        }
        if let Some(value) = self.clip_value {
            ConfigError::check_positive("TrainConfig", "clip_value", value as f64)?;
        }
        if let Some(norm) = self.clip_norm {
            ConfigError::check_positive("TrainConfig", "clip_norm", norm as f64)?;
        }
        if let Some(l1) = self.l1 {
            check("l1.every", l1.every)?;
            for (field, v) in [
                ("l1.start", l1.start),
                ("l1.end", l1.end),
                ("l1.growth", l1.growth),
            ] {
                ConfigError::check_positive("TrainConfig", field, v)?;
            }
        }
        let Some(r) = self.regularizer else {
            return Ok(());
        };
        if !(r.lambda.is_finite() && r.lambda >= 0.0) {
            let reason = format!("must be finite and at least 0, got {}", r.lambda);
            return Err(ConfigError::new(
                "TrainConfig",
                "regularizer.lambda",
                reason,
            ));
        }
        if r.end < r.start {
            let reason = format!("must not come before start ({}), got {}", r.start, r.end);
            return Err(ConfigError::new("TrainConfig", "regularizer.end", reason));
        }
        if !self.model.has_regularizer() {
            let reason = format!("is set, but the {} stack has no regulariser", self.model);
            return Err(ConfigError::new("TrainConfig", "regularizer", reason));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and that the config fits `data`'s task: the task has the
    /// operation, the model reads its rows ([`Protocol::rows`](super::Protocol::rows)), an
    /// epoch budget has fixed training rows to count, and every target is a finite f32 (a
    /// product over many steps can outgrow f32; its errors could not be measured).
    pub fn validate_for(&self, data: &TaskData) -> Result<(), ConfigError> {
        self.validate()?;
        let protocol = data.protocol;
        let refuse = |field, reason| Err(ConfigError::new("TrainConfig", field, reason));
        if !protocol.operations().contains(&data.op) {
            let ops: Vec<&str> = protocol.operations().iter().map(|o| o.name()).collect();
            let reason = format!(
                "the {protocol} task has no {}: it has {}",
                data.op,
                ops.join(", ")
            );
            return Err(ConfigError::new("TaskData", "op", reason));
        }
        if self.model.rows() != protocol.rows() {
            let reason = format!(
                "{} reads {}, but the {protocol} task's rows are {}",
                self.model,
                self.model.rows(),
                protocol.rows()
            );
            return refuse("model", reason);
        }
        if let (Budget::Epochs(_), None) = (self.budget, data.train_rows()) {
            let reason = format!(
                "is in epochs, but the {protocol} task draws a fresh batch every step: give it in steps"
            );
            return refuse("budget", reason);
        }
        for (field, split) in [
            ("valid", &data.valid),
            ("extrapolation", &data.extrapolation),
        ] {
            let overflow = split.y.iter().enumerate().filter(|(_, t)| !t.is_finite());
            if let Some(step) = overflow.map(|(k, _)| k % split.outputs).min() {
                let reason = format!(
                    "has targets beyond f32 (±{:.1e}) from output {} of {} on: {} cannot be \
                     measured there; shorten the sequences",
                    f32::MAX,
                    step + 1,
                    split.outputs,
                    data.op.formula()
                );
                return Err(ConfigError::new("TaskData", field, reason));
            }
        }
        Ok(())
    }

    /// The optimizer this config describes (see [`OptimizerKind`]). Gradient clipping is the
    /// training loop's: it clips each member of a population alone.
    pub fn optimizer(&self) -> RunOptimizer {
        match self.optimizer {
            OptimizerKind::Adam => {
                RunOptimizer::Adam(FastAdamConfig::new().with_epsilon(self.epsilon).init())
            }
            OptimizerKind::RmsProp => {
                RunOptimizer::RmsProp(FastRmsPropConfig::new().with_epsilon(self.epsilon).init())
            }
        }
    }
}

/// The optimizer of a run.
pub enum RunOptimizer {
    /// Adam.
    Adam(FastAdam),
    /// RMSProp.
    RmsProp(FastRmsProp),
}

impl RunOptimizer {
    /// One update of `module` from `grads` with learning rate `lr`.
    pub fn step<M: burn::module::Module>(
        &mut self,
        lr: f64,
        module: M,
        grads: GradientsParams,
    ) -> M {
        match self {
            RunOptimizer::Adam(optim) => optim.step(lr, module, grads),
            RunOptimizer::RmsProp(optim) => optim.step(lr, module, grads),
        }
    }

    /// Keeps the state of the members of a population where `keep` is set (see
    /// [`FastAdam::retain_members`]).
    pub fn retain_members(&mut self, keep: &[bool], members: usize) {
        match self {
            RunOptimizer::Adam(optim) => optim.retain_members(keep, members),
            RunOptimizer::RmsProp(optim) => optim.retain_members(keep, members),
        }
    }

    /// One update of parameters held on the host, each `(id, values, gradient)` (see
    /// [`FastAdam::step`]); `false` (nothing updated) when the optimizer clips gradients.
    #[cfg(feature = "flex")]
    pub(crate) fn step_host<F: burn_nalu::optim::HostFloat>(
        &mut self,
        lr: f64,
        params: &mut [(burn::module::ParamId, &mut [F], &[F])],
    ) -> bool {
        match self {
            RunOptimizer::Adam(optim) => optim.step_host(lr, params),
            RunOptimizer::RmsProp(optim) => optim.step_host(lr, params),
        }
    }

    /// Its state for `module`'s parameters (a training checkpoint's).
    pub(crate) fn export<M: burn::module::Module>(&self, module: &M) -> OptimizerState {
        match self {
            RunOptimizer::Adam(optim) => optim.export(module),
            RunOptimizer::RmsProp(optim) => optim.export(module),
        }
    }

    /// Takes up a state [`RunOptimizer::export`] gave for a module like `module`.
    pub(crate) fn import<M: burn::module::Module>(
        &mut self,
        module: &M,
        state: &OptimizerState,
    ) -> Result<(), String> {
        match self {
            RunOptimizer::Adam(optim) => optim.import(module, state),
            RunOptimizer::RmsProp(optim) => optim.import(module, state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_is_valid() {
        for &model in ModelKind::ALL {
            assert_eq!(TrainConfig::madsen(model).validate(), Ok(()), "{model}");
            for inputs in [2, 10] {
                for op in Operation::ALL {
                    assert_eq!(
                        TrainConfig::mistry(model, op, inputs).validate(),
                        Ok(()),
                        "{model}"
                    );
                }
            }
            for op in Operation::ALL {
                assert_eq!(
                    TrainConfig::recipe(model, op).validate(),
                    Ok(()),
                    "{model} {op}"
                );
            }
        }
        for op in Operation::ALL {
            assert_eq!(TrainConfig::recommended(op).validate(), Ok(()), "{op}");
            assert_eq!(
                TrainConfig::madsen_recommended(op).validate(),
                Ok(()),
                "{op}"
            );
        }
    }

    /// The Primer's single-module recipes as `single_layer_benchmark.sh` runs them (2 inputs).
    #[test]
    fn the_primers_recipes_are_their_scripts() {
        use ModelKind::*;
        let inalu = TrainConfig::mistry(SingleInalu, Operation::Mul, 2);
        assert_eq!(
            (inalu.clip_value, inalu.restart_on_stall),
            (Some(0.1), true)
        );
        let reg = inalu.regularizer.unwrap();
        assert_eq!(
            (inalu.lr, reg.lambda, reg.start, reg.end),
            (1e-3, 1.0, 10_000, 10_000)
        );
        assert_eq!(inalu.budget, Budget::Steps(50_000));
        for (op, start, end) in [(Operation::Mul, 1e-7, 1e-5), (Operation::Div, 1e-9, 1e-7)] {
            let npu = TrainConfig::mistry(SingleNpu, op, 2);
            assert_eq!((npu.lr, npu.regularizer), (5e-3, None));
            let l1 = npu.l1.unwrap();
            assert_eq!(
                (l1.start, l1.end, l1.every, l1.growth),
                (start, end, 10_000, 10.0)
            );
        }
        let nau = TrainConfig::mistry(SingleNau, Operation::Add, 2)
            .regularizer
            .unwrap();
        assert_eq!((nau.lambda, nau.start, nau.end), (0.01, 20_000, 35_000));
        let nmu = TrainConfig::mistry(SingleNmu, Operation::Mul, 2)
            .regularizer
            .unwrap();
        assert_eq!((nmu.lambda, nmu.start, nmu.end), (10.0, 20_000, 35_000));
        assert_eq!(
            TrainConfig::mistry(SingleNalu, Operation::Add, 2).clip_value,
            None
        );
    }

    #[test]
    fn invalid_settings_are_refused_by_field() {
        let base = TrainConfig::madsen(ModelKind::NauNmu);
        let reversed = TrainConfig {
            regularizer: Some(RegularizerSchedule {
                lambda: 1.0,
                start: 10,
                end: 5,
            }),
            ..base.clone()
        };
        assert_eq!(
            reversed.validate().unwrap_err().to_string(),
            "TrainConfig.regularizer.end must not come before start (10), got 5"
        );
        let nalu = TrainConfig {
            model: ModelKind::Nalu,
            ..base.clone()
        };
        assert_eq!(
            nalu.validate().unwrap_err().to_string(),
            "TrainConfig.regularizer is set, but the nalu stack has no regulariser"
        );
        let zero = TrainConfig {
            budget: Budget::Steps(0),
            ..base
        };
        assert_eq!(zero.validate().unwrap_err().field(), "budget.steps");
    }
}
