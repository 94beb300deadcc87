//! The static-toy experiments of Trask et al. 2018 (Table 1), as the Keras reference ran them.
//!
//! Input: 100 numbers uniform in [0, 1). A seeded permutation of the columns splits them into two
//! halves; `a` and `b` are the row sums over each half and the target is `op(a, b)` for one of
//! six operations. A two-layer NALU is trained on 1000 rows and tested on the same rows with the
//! inputs doubled (extrapolation). Model selection uses fresh rows from the training
//! distribution, never the extrapolation set.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use burn_nalu::experiments::{Operation, StaticToyData, TrainConfig, train};
//!
//! let data = StaticToyData::generate(Operation::Add, 1000, 0);
//! let run = train(&data, &TrainConfig::reference(Operation::Add, 0), &Device::default(), &mut |_| {});
//! println!("extrapolation MSE {}", run.result.extrapolation_mse);
//! ```

mod data;
mod model;
mod readback;
pub mod report;
mod task;
mod train;

pub use data::{MADSEN_EPSILON, MadsenSpec, N_FEATURES, Protocol, ROWS, Split, StaticToyData};
pub use model::{ModelKind, Stack, StaticToyModel, mse};
pub use readback::Readback;
pub use task::{Operation, Recipe};
pub use train::{
    BASELINE_INITS, Divergence, EpochMetrics, OptimizerKind, RunOptimizer, RunResult, Step,
    ToyStep, TrainConfig, TrainedRun, random_init_extrapolation_mse, train, train_step,
};
