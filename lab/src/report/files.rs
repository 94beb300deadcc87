//! The results files: JSON, CSV (read back whole, pooled over files, or row by row), and a
//! model's weights, each written whole ([`write_file`]).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ExperimentError;
use crate::train::RunResult;
use crate::write::write_file;

/// Writes `value` as pretty-printed JSON ([`write_file`]): the runs ([`RunResult`] fields, one
/// object per run), the per-task summaries ([`TaskSummary`](super::TaskSummary)) or a run's settings.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), ExperimentError> {
    let mut json =
        serde_json::to_vec_pretty(value).map_err(|e| ExperimentError::format(path, e))?;
    json.push(b'\n');
    write_file(path, &json)
}

/// Reads back what [`write_json`] wrote.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ExperimentError> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| ExperimentError::format(path, e))
}

/// Writes `results` as CSV ([`write_file`]), one row per run, the columns [`RunResult`]'s
/// fields (empty cells for absent values; fields with commas or quotes quoted).
pub fn write_csv(path: &Path, results: &[RunResult]) -> Result<(), ExperimentError> {
    let format = |e: csv::Error| ExperimentError::format(path, e);
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in results {
        writer.serialize(r).map_err(format)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| format(e.into_error().into()))?;
    write_file(path, &bytes)
}

/// Reads back what [`write_csv`] wrote; any row that cannot be read is an error.
pub fn read_csv(path: &Path) -> Result<Vec<RunResult>, ExperimentError> {
    let (runs, dropped) = read_csv_rows(path)?;
    match dropped.first() {
        Some(row) => Err(ExperimentError::format(path, row)),
        None => Ok(runs),
    }
}

/// The runs of several results files ([`read_csv`]) as one table: a run in more than one file
/// (the same label, task, protocol and seeds, as when a cell is trained again to more seeds in a
/// directory of its own) counts once, from the first file that holds it. The copies must be the
/// same run (`same_run`): otherwise the file of the later copy is refused, as pooling it would
/// count one seed twice or mix two recipes.
pub fn read_pooled(paths: &[&Path]) -> Result<Vec<RunResult>, ExperimentError> {
    let mut pooled: Vec<RunResult> = Vec::new();
    // Each run's identity, to the index of its first copy and the file that held it.
    let mut first: HashMap<String, (usize, &Path)> = HashMap::new();
    for &path in paths {
        for run in read_csv(path)? {
            let identity = format!(
                "{} {:?} {:?} {} {}",
                run.label(),
                run.task,
                run.protocol,
                run.seed,
                run.init_seed
            );
            match first.get(&identity) {
                None => {
                    first.insert(identity, (pooled.len(), path));
                    pooled.push(run);
                }
                Some(&(k, _)) if same_run(&pooled[k], &run) => {}
                Some((_, there)) => {
                    let message = format!(
                        "seed {} of {} on {} differs from the same run in {}",
                        run.seed,
                        run.label(),
                        run.task.formula(),
                        there.display()
                    );
                    return Err(ExperimentError::format(path, message));
                }
            }
        }
    }
    Ok(pooled)
}

/// Whether two results are one run trained twice: equal in every field but the timings, the
/// population it trained in and the last bits of the training MSE. That one is the step's mean
/// of the last batch's f32 squared errors, which a faster step of the same bits of weights may
/// sum in another order: for `n` non-negative terms the two sums are within `(n − 1)·u` of each
/// other relatively (u = 2⁻²⁴, f32's unit roundoff). Every metric evaluated from the weights
/// (`valid_mse`, `extrapolation_mse`, the formula) must be equal to the bit.
fn same_run(a: &RunResult, b: &RunResult) -> bool {
    let untimed = |run: &RunResult| {
        let mut run = run.clone();
        (run.wall_seconds, run.steps_per_second, run.population) = (0.0, 0.0, 0);
        run.train_mse = 0.0;
        // As text, so that NaN metrics compare equal, as they do for the same run.
        format!("{run:?}")
    };
    let rounding = (a.batch_size.max(2) - 1) as f64 * f64::from(f32::EPSILON) / 2.0;
    let close =
        (a.train_mse - b.train_mse).abs() <= rounding * a.train_mse.abs().max(b.train_mse.abs());
    let equal_or_both_nan =
        a.train_mse == b.train_mse || (a.train_mse.is_nan() && b.train_mse.is_nan());
    untimed(a) == untimed(b) && (close || equal_or_both_nan)
}

/// A row of a results CSV that could not be read, such as the last row of a file an older
/// version was killed while writing.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedRow {
    /// The row's line in the file (1: the header).
    pub line: u64,
    /// Why it could not be read.
    pub reason: String,
}

impl std::fmt::Display for DroppedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Reads the rows of a results CSV that are complete, and says which were not: a last line
/// without its newline (a write cut short) and any row that does not parse.
pub fn read_csv_rows(path: &Path) -> Result<(Vec<RunResult>, Vec<DroppedRow>), ExperimentError> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::io(path, e))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut dropped = Vec::new();
    if complete < bytes.len() {
        dropped.push(DroppedRow {
            line: bytes[..complete].iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            reason: "cut short (no end of line)".into(),
        });
    }
    let mut reader = csv::Reader::from_reader(&bytes[..complete]);
    let mut runs = Vec::new();
    for row in reader.deserialize::<RunResult>() {
        match row {
            Ok(run) => runs.push(RunResult::upgrade(run)),
            Err(err) => dropped.push(DroppedRow {
                line: err.position().map_or(0, |p| p.line()),
                reason: err.to_string(),
            }),
        }
    }
    dropped.sort_by_key(|d| d.line);
    Ok((runs, dropped))
}

/// Saves `model`'s parameters as a burnpack file ([`write_file`]), which `Module::load_file`
/// reads.
pub fn save_model<M: Module>(path: &Path, model: M) -> Result<(), ExperimentError> {
    let format = |e| ExperimentError::format(path, format!("{e:?}"));
    let bytes = model.into_record().into_bytes().map_err(format)?;
    write_file(path, &bytes)
}
