//! The rows a run is polished on. The polish itself (Levenberg–Marquardt in f64) and its keep
//! rule are the library's ([`burn_nalu::recipe::polish_if_better`]), as for a user's model.

use crate::task::{Split, TaskData, TrainingData};
use burn_nalu::recipe::POLISH_ROWS;

/// The rows a run is polished on: its fixed training rows, or the first [`POLISH_ROWS`] rows its
/// sampler draws (a copy of it, so training draws the same batches).
pub(crate) fn training_rows(data: &TaskData) -> Split {
    match &data.train {
        TrainingData::Rows(split) => split.clone(),
        TrainingData::Stream(sampler) => {
            let (width, outputs) = (data.width(), data.outputs());
            let (mut x, mut y) = (Vec::new(), Vec::new());
            sampler.boxed_clone().sample(POLISH_ROWS, &mut x, &mut y);
            Split {
                x,
                y,
                width,
                outputs,
            }
        }
    }
}
