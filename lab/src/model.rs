//! What the training loop needs of a model: any stack of units, one unit, or a model of
//! another task shape.

use burn::tensor::{Device, Tensor};

use super::config::TrainConfig;
use super::stacks::LabModel;
use burn_nalu::ArithmeticUnit;
use burn_nalu::formula::{Formula, FormulaError, SnapOptions};
#[cfg(feature = "flex")]
use burn_nalu::internals::HostLayer;

/// A model the [`Trainer`](super::Trainer) trains: an [`ArithmeticUnit`] (forward pass,
/// regulariser, clamps and snapping, for a population of copies at once) that knows how to
/// build itself from a [`TrainConfig`] and can be read back as a formula.
///
/// Its forward pass takes the task's rows, `[runs, rows, width]`, and returns
/// `[runs, rows, outputs]` (see [`Split`](super::Split) for what a row holds).
pub trait Model: ArithmeticUnit + 'static {
    /// A fresh model for `config` on `step_width` input values per step (a static task's whole
    /// row; see [`TaskData::step_width`](super::TaskData::step_width)), its parameters drawn now
    /// from the device's generator (seeded by the caller).
    fn init(config: &TrainConfig, step_width: usize, device: &Device) -> Self;

    /// The model with fresh weights, for a run whose loss stalled
    /// ([`TrainConfig::restart_on_stall`]); unchanged by default.
    fn reinitialize(self) -> Self {
        self
    }

    /// The formula the model computes, its weights snapped to discrete values; `x` is the data
    /// the gates are judged on (`[rows, width]`).
    fn formula(&self, x: Tensor<2>, options: &SnapOptions) -> Result<Formula, FormulaError>;

    /// The model's layers as the trainer's host step runs them (`burn_nalu::internals`), in
    /// parameter order, for a population of `members` copies; `None` (the default) where some
    /// layer has no host kernels, and the model trains through Burn's ops.
    #[cfg(feature = "flex")]
    fn host_layers(&self, members: usize) -> Option<Vec<HostLayer>> {
        let _ = members;
        None
    }
}

impl Model for LabModel {
    fn init(config: &TrainConfig, step_width: usize, device: &Device) -> Self {
        LabModel::init(config.model, config.init, step_width, config.hidden, device)
    }

    fn reinitialize(self) -> Self {
        LabModel::reinitialize(self)
    }

    fn formula(&self, x: Tensor<2>, options: &SnapOptions) -> Result<Formula, FormulaError> {
        LabModel::formula(self, x, options)
    }

    #[cfg(feature = "flex")]
    fn host_layers(&self, members: usize) -> Option<Vec<HostLayer>> {
        LabModel::host_layers(self, members)
    }
}
