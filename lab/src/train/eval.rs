//! Measuring the runs: each run's MSE on its splits, evaluated for the whole population at
//! once, and the random-initialisation baseline of the normalised error.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::model::Model;
use crate::stacks::LabModel;
use crate::task::{Split, TaskData};
use burn_nalu::internals::mean_squared_error;
use burn_nalu::internals::{values, with_seed};
use burn_nalu::{ArithmeticUnit, Population};

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

/// Number of random initialisations averaged for the normalised error.
pub const BASELINE_INITS: u64 = 10;
/// Seeds of those initialisations: fixed, so every run of a task shares the same baseline model.
const BASELINE_SEED: u64 = 1_000_000;

/// Every run's evaluation splits, stacked `[runs, rows, width]` on the plain device, with their
/// targets on the host.
pub(super) struct EvalSets {
    /// Training rows, for tasks that have fixed ones.
    train: Option<(Tensor<3>, Vec<f32>)>,
    valid: (Tensor<3>, Vec<f32>),
    extrapolation: (Tensor<3>, Vec<f32>),
}

impl EvalSets {
    pub(super) fn new(data: &[TaskData], device: &Device) -> Self {
        let train: Option<Vec<&Split>> = data.iter().map(TaskData::train_rows).collect();
        Self {
            train: train.map(|splits| stack(splits, device)),
            valid: stack(data.iter().map(|d| &d.valid).collect(), device),
            extrapolation: extrapolation_splits(data, device),
        }
    }

    /// Keeps the splits of the runs where `keep` is set.
    pub(super) fn retain(&mut self, keep: &[bool]) {
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
    pub(super) fn evaluate<M: Model>(
        &self,
        model: &Population<M>,
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

/// The runs' splits as one `[runs, rows, width]` input and their targets, run after run.
fn stack(splits: Vec<&Split>, device: &Device) -> (Tensor<3>, Vec<f32>) {
    let (rows, width) = (splits[0].rows(), splits[0].width);
    let x: Vec<f32> = splits.iter().flat_map(|s| s.x.iter().copied()).collect();
    let y: Vec<f32> = splits.iter().flat_map(|s| s.y.iter().copied()).collect();
    let shape = [splits.len(), rows, width];
    (Tensor::from_data(TensorData::new(x, shape), device), y)
}

/// The runs' extrapolation splits, [`stack`]ed.
fn extrapolation_splits(data: &[TaskData], device: &Device) -> (Tensor<3>, Vec<f32>) {
    stack(data.iter().map(|d| &d.extrapolation).collect(), device)
}

/// Each member's MSE on its block of `(x, y)`: the f32 outputs' squared errors summed on the
/// host in f64, in row order, so that the number does not depend on a backend's summation
/// order.
fn member_mse<M: ArithmeticUnit>(
    model: &Population<M>,
    (x, y): &(Tensor<3>, Vec<f32>),
) -> Vec<f64> {
    let pred = model.forward(x.clone()).into_data().convert::<f64>();
    let pred = pred.as_slice::<f64>().expect("f64 after convert");
    let rows = y.len() / model.members();
    pred.chunks(rows)
        .zip(y.chunks(rows))
        .map(|(p, t)| mean_squared_error(p, t))
        .collect()
}

/// The mean squared error of `model` (one member) on `split`: the f32 outputs' squared errors
/// summed on the host in f64, in row order, so that the number does not depend on a backend's
/// summation order.
pub fn split_mse<M: ArithmeticUnit>(model: &M, split: &Split, device: &Device) -> f64 {
    split.mse(model, device)
}

impl LabModel {
    /// The mean squared error on `split` ([`split_mse`]).
    pub fn mse(&self, split: &Split, device: &Device) -> f64 {
        split_mse(self, split, device)
    }
}

/// Mean extrapolation MSE of [`BASELINE_INITS`] freshly initialised models, per run.
pub(super) fn random_init_extrapolation_mse<M: Model>(
    data: &[TaskData],
    config: &TrainConfig,
    device: &Device,
) -> Vec<f64> {
    let width = data[0].step_width;
    // Only the extrapolation split: the training and validation rows are not read here (on
    // Madsen & Johansen's task the validation rows alone are 4 MB a run).
    let extrapolation = extrapolation_splits(data, device);
    let mut total = vec![0.0; data.len()];
    for k in 0..BASELINE_INITS {
        let model = with_seed(device, BASELINE_SEED + k, || {
            let model = M::init(config, width, device);
            values(&model); // draws the lazily initialised parameters under the seed
            model
        });
        let population = Population::from_members(vec![model; data.len()]);
        for (t, m) in total
            .iter_mut()
            .zip(member_mse(&population, &extrapolation))
        {
            *t += m;
        }
    }
    total.iter().map(|t| t / BASELINE_INITS as f64).collect()
}
