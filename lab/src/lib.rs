//! burn-nalu's lab: the arithmetic tasks of the papers, their models and recipes, a population
//! training loop, the read-back of what each run learned, and the reports.
//!
//! A [`Task`] makes the data of a run (training rows or a batch sampler, validation and
//! extrapolation splits, success threshold, input groups): [`ReferenceTask`] is the static toy
//! task of Trask et al. 2018 as the Keras reference ran it, [`MadsenTask`] Madsen & Johansen
//! 2020's; [`RecurrentTask`], [`SequentialTask`] and [`MistryTask`] are the others. A
//! [`ModelKind`] names a model ([`LabModel`]: a two-layer stack, one unit, or a recurrent cell),
//! and a [`TrainConfig`] how to train it (each model has a recipe per task); [`task()`],
//! [`selection`] and [`recipe`] choose what a protocol trains, as the `static_toy` command line
//! does. [`train_population`] trains one run per seed as one
//! [`Population`](burn_nalu::Population) of any [`Model`]: every run computes what it would
//! alone, in one forward, one backward and one optimizer step for all. Model selection uses each
//! run's validation split, never its extrapolation split. [`report`] turns the [`RunResult`]s
//! into tables, summaries with Wilson intervals, JSON, CSV and plots.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use burn_nalu_lab::{ModelKind, Operation, ReferenceTask, Task, TrainConfig};
//! use burn_nalu_lab::{TrainedRun, train_population};
//!
//! let task = ReferenceTask::default();
//! let data = (0..10).map(|seed| task.data(Operation::Add, seed)).collect();
//! let config = TrainConfig::recipe(ModelKind::Nac, Operation::Add);
//! let runs: Vec<TrainedRun> = train_population(data, &config, &Device::default(), &mut |_| {})?;
//! let solved = runs.iter().filter(|r| r.result.success).count();
//! println!("{solved} of 10 seeds solved a + b");
//! # Ok::<(), burn_nalu_lab::ExperimentError>(())
//! ```

mod config;
mod error;
mod madsen;
mod mistry;
mod model;
mod names;
mod operation;
mod protocol;
mod readback;
mod recurrent;
mod reference;
pub mod report;
mod select;
mod sequential;
mod stacks;
mod task;
mod train;
mod write;

pub use config::{Budget, OptimizerKind, RunOptimizer, StopRule, TrainConfig};
pub use error::ExperimentError;
pub use madsen::{MADSEN_EPSILON, MADSEN_PUBLISHED, MadsenTask, PublishedRate, published_rate};
pub use mistry::{MISTRY_THRESHOLD, MistryTask, PRIMER_EPSILON, primer_threshold};
pub use model::Model;
pub use protocol::{
    MISTRY_RANGES, MadsenSpec, MistrySpec, Protocol, Ranges, RecurrentSpec, Rows, SequentialSpec,
    TaskSettings,
};
pub use recurrent::RecurrentTask;
pub use reference::{REFERENCE_EPSILON, ReferenceTask};
pub use select::{ModelChoice, TaskOptions, recipe, selection, task};
pub use sequential::SequentialTask;
pub use stacks::{
    Accumulator, InitScheme, LabModel, ModelKind, Recurrent, Single, Stack, madsen_nac_range,
};
pub use task::{BatchSampler, Operation, Split, Subsets, Task, TaskData, TrainingData};
pub use train::{
    BASELINE_INITS, Checkpointing, Evaluation, Polish, Progress, RunResult, TrainedRun, Trainer,
    init_seed, polish, split_mse, train, train_population, train_population_checkpointed,
};
