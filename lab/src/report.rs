//! Reports: the results table, per-task summaries over seeds, the table beside Madsen & Johansen's,
//! JSON, CSV, loss curves and success-rate plots.
//!
//! JSON and CSV come from one flat struct ([`RunResult`]), the CSV through the `csv` crate, so
//! that a formula or message holding commas or quotes stays one field. Every file is written
//! whole to a temporary file beside it and renamed over it ([`write_file`]): a run killed at
//! any instant leaves the old file or the new one, never a torn one.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use burn::module::Module;
use plotters::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::error::ExperimentError;
use super::madsen::{PublishedRate, published_rate};
use super::protocol::{Protocol, TaskSettings};
use super::stacks::ModelKind;
use super::task::Operation;
use super::train::{Evaluation, RunResult};

/// A metric as reports print it: `0` when exactly zero, otherwise three significant digits in
/// scientific notation (`6.000e-3`), `NaN` or `inf`.
pub fn format_metric(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_finite() {
        format!("{x:.3e}")
    } else {
        format!("{x}")
    }
}

/// A normalised error (a percentage): three decimals, or scientific notation from 10⁴ on (a
/// model whose outputs blow up extrapolating is billions of times worse than random).
pub fn format_percent(x: f64) -> String {
    match x.abs() < 1e4 {
        true => format!("{x:.3}"),
        false => format_metric(x),
    }
}

/// The results table, one row per run, in the Keras reference's shape (operation, train loss,
/// extrapolated test loss) plus validation loss, normalised error, steps, time and speed.
pub fn results_table(results: &[RunResult]) -> String {
    let mut out = String::from(
        "| Model | Operation | Seed | Train Loss | Extrapolated Test Loss | Valid Loss | \
         Norm. Error | Best / Run Steps | Wall s | Steps/s | Status |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.2} | {:.0} | {} |",
            r.model,
            r.task.formula(),
            r.seed,
            format_metric(r.train_mse),
            format_metric(r.extrapolation_mse),
            format_metric(r.valid_mse),
            format_percent(r.normalized_extrapolation_error),
            r.best_step,
            r.steps,
            r.wall_seconds,
            r.steps_per_second,
            r.status(),
        );
    }
    out
}

/// A model's results on a task over several seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The model, with its initialisations per seed where there were several
    /// ([`RunResult::label`]).
    pub model: String,
    /// The operation.
    pub task: Operation,
    /// Number of runs (seeds).
    pub runs: usize,
    /// Runs whose extrapolation MSE is below their success threshold.
    pub successes: usize,
    /// Successful runs whose formula reads back as the target ([`RunResult::learned`]);
    /// `None` for a model the formula module cannot read (iNALU, the recurrent models).
    #[serde(default)]
    pub learned: Option<usize>,
    /// With snapping on: runs that succeed with the weights the snap rule keeps.
    pub snapped_successes: Option<usize>,
    /// Runs that diverged.
    pub diverged: usize,
    /// Wilson 95% confidence interval of the success rate, `(lower, upper)`.
    pub success_rate_ci: (f64, f64),
    /// Median over the successful runs of the step at which each was first solved.
    pub median_solved_at_step: Option<f64>,
    /// Mean over the successful runs of the step at which each was first solved (Madsen &
    /// Johansen report it beside the median: the tail is long).
    #[serde(default)]
    pub mean_solved_at_step: Option<f64>,
    /// Median sparsity error of the successful runs (where the units have one).
    pub median_sparsity_error: Option<f64>,
    /// Runs stopped by the give-up rule ([`RunResult::gave_up`]).
    #[serde(default)]
    pub gave_up: usize,
    /// Failing runs that the early stop ended
    /// ([`TrainConfig::early_stop_patience`]): converged on validation data, above the
    /// extrapolation threshold when they stopped; near misses that more steps might have
    /// carried over it.
    #[serde(default)]
    pub stopped_early_failing: usize,
    /// Median extrapolation MSE over the runs.
    pub median_extrapolation_mse: f64,
    /// Median normalised extrapolation error over the runs.
    pub median_normalized_error: f64,
}

/// `z` of a two-sided 95% interval of the normal distribution.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of a success rate: `successes` of `n` trials, normal quantile `z`.
///
/// `(p + z²/2n ± z·√(p(1 − p)/n + z²/4n²)) / (1 + z²/n)` with `p = successes / n`; unlike the
/// normal approximation it stays in [0, 1] and is not empty at 0 or n successes.
pub fn wilson_interval(successes: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z2 / n;
    (
        ((centre - half) / scale).max(0.0),
        ((centre + half) / scale).min(1.0),
    )
}

/// The median of the values present, `None` when there are none.
fn median_of_some(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let present: Vec<f64> = values.flatten().collect();
    (!present.is_empty()).then(|| median(present.into_iter()))
}

/// The mean of the values present, `None` when there are none.
fn mean_of_some(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let present: Vec<f64> = values.flatten().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// Groups `results` by model (with its initialisations per seed, [`RunResult::label`]) and
/// task, in order of first appearance, and summarises each group.
pub fn summarize(results: &[RunResult]) -> Vec<TaskSummary> {
    let mut groups: Vec<(String, Operation)> = Vec::new();
    for r in results {
        let key = (r.label(), r.task);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups
        .into_iter()
        .map(|(model, task)| {
            let runs: Vec<&RunResult> = cell(results, &model, task).collect();
            let successes: Vec<&&RunResult> = runs.iter().filter(|r| r.success).collect();
            TaskSummary {
                model,
                task,
                runs: runs.len(),
                successes: successes.len(),
                learned: (runs.iter().any(|r| r.readable()))
                    .then(|| runs.iter().filter(|r| r.learned()).count()),
                snapped_successes: runs
                    .iter()
                    .map(|r| r.snapped_success.map(usize::from))
                    .sum::<Option<usize>>(),
                success_rate_ci: wilson_interval(successes.len(), runs.len(), Z_95),
                median_solved_at_step: median_of_some(
                    successes.iter().map(|r| r.solved_at_step.map(|s| s as f64)),
                ),
                mean_solved_at_step: mean_of_some(
                    successes.iter().map(|r| r.solved_at_step.map(|s| s as f64)),
                ),
                median_sparsity_error: median_of_some(successes.iter().map(|r| r.sparsity_error)),
                gave_up: runs.iter().filter(|r| r.gave_up).count(),
                stopped_early_failing: (runs.iter())
                    .filter(|r| r.stopped_at_step.is_some() && !r.gave_up && !r.success)
                    .count(),
                diverged: runs.iter().filter(|r| r.diverged_step.is_some()).count(),
                median_extrapolation_mse: median(runs.iter().map(|r| r.extrapolation_mse)),
                median_normalized_error: median(
                    runs.iter().map(|r| r.normalized_extrapolation_error),
                ),
            }
        })
        .collect()
}

/// The median (mean of the two middle values for an even count); NaN sorts above everything.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The per-task success table printed for several seeds.
pub fn summary_table(summaries: &[TaskSummary]) -> String {
    let mut out = String::from(
        "| Model | Operation | Success | 95% CI | Learned (formula) | Diverged | \
         Solved At (median step) | Sparsity Error (median) | Median Extrapolated Test Loss | \
         Median Norm. Error | Success, snapped |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | [{:.2}, {:.2}] | {} | {} | {} | {} | {} | {} | {} |",
            s.model,
            s.task.formula(),
            s.successes,
            s.runs,
            s.success_rate_ci.0,
            s.success_rate_ci.1,
            or_dash(s.learned.map(|k| format!("{k}/{}", s.runs))),
            s.diverged,
            or_dash(s.median_solved_at_step.map(|v| format!("{v:.0}"))),
            or_dash(s.median_sparsity_error.map(format_metric)),
            format_metric(s.median_extrapolation_mse),
            format_percent(s.median_normalized_error),
            or_dash(s.snapped_successes.map(|k| format!("{k}/{}", s.runs))),
        );
    }
    out
}

/// Per operation, the model that learned it in the most runs (its formula read back as the
/// target; then the most successes, then the lower median extrapolation MSE) and how every other
/// model did: the closing summary of a run.
pub fn verdict_table(summaries: &[TaskSummary]) -> String {
    let mut out = String::from(
        "| Operation | Learned | Best model | Extrapolation MSE (median) | Others |\n\
         |---|---|---|---|---|\n",
    );
    let rate = |k: usize, s: &TaskSummary| k as f64 / s.runs.max(1) as f64;
    for task in tasks_in_order(summaries) {
        let mut cell: Vec<&TaskSummary> = summaries.iter().filter(|s| s.task == task).collect();
        cell.sort_by(|a, b| {
            let by = |k: fn(&TaskSummary) -> usize| rate(k(b), b).total_cmp(&rate(k(a), a));
            by(|s| s.learned.unwrap_or(0))
                .then(by(|s| s.successes))
                .then(
                    a.median_extrapolation_mse
                        .total_cmp(&b.median_extrapolation_mse),
                )
        });
        let best = cell[0];
        let others: Vec<String> = cell[1..]
            .iter()
            .map(|s| {
                let mse = format_metric(s.median_extrapolation_mse);
                match s.learned {
                    Some(k) => format!("{} {k}/{} ({mse})", s.model, s.runs),
                    None => format!(
                        "{} {}/{} below the threshold ({mse})",
                        s.model, s.successes, s.runs
                    ),
                }
            })
            .collect();
        let n = best.runs;
        let verdict = match (best.learned, best.successes) {
            (_, 0) => "no".into(),
            (Some(0), k) => format!("no (below the threshold {k}/{n}, no formula)"),
            (Some(k), _) => format!("yes, {k}/{n}"),
            (None, k) => format!("below the threshold {k}/{n} (no formula read-back)"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            task.formula(),
            verdict,
            best.model,
            format_metric(best.median_extrapolation_mse),
            if others.is_empty() {
                "-".into()
            } else {
                others.join("; ")
            },
        );
    }
    out
}

/// Success counts with tasks as rows and models as columns, and how many of them read back as
/// the target (`9/10 (8)`; `-` where not run).
pub fn success_matrix(summaries: &[TaskSummary]) -> String {
    let models = distinct(summaries.iter().map(|s| s.model.as_str()));
    let mut out = format!(
        "| Operation | {} |\n|---|{}\n",
        models.join(" | "),
        "---|".repeat(models.len())
    );
    for task in tasks_in_order(summaries) {
        let cells: Vec<String> = models
            .iter()
            .map(|&m| {
                match summaries
                    .iter()
                    .find(|s| (s.model.as_str(), s.task) == (m, task))
                {
                    Some(s) => {
                        let learned = s.learned.map_or("-".into(), |k| k.to_string());
                        format!("{}/{} ({learned})", s.successes, s.runs)
                    }
                    None => "-".into(),
                }
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", task.formula(), cells.join(" | "));
    }
    out
}

/// Madsen & Johansen's published rate for a summarised cell, where they report one and the
/// cell's runs are on their protocol (a label such as `nau-nmu, best of 8` has none).
pub fn published(summary: &TaskSummary, runs: &[RunResult]) -> Option<PublishedRate> {
    let model = summary.model.parse::<ModelKind>().ok()?;
    let on_madsen = runs
        .iter()
        .any(|r| r.protocol == Protocol::Madsen && r.model == model && r.task == summary.task);
    published_rate(model, summary.task).filter(|_| on_madsen)
}

/// Madsen & Johansen's static table with this crate's runs beside it: per operation (in
/// [`Operation::ALL`]'s order) and model, the published success rate, this crate's with its
/// Wilson 95% interval, how many successes read back as the target, when they were solved
/// (median and mean step), their sparsity error, how many runs gave up, how many failing
/// runs the early stop ended and the cell's wall clock (each population's clock shared among
/// its runs, summed); the total wall clock of every run on a line after the table.
pub fn comparison_table(runs: &[RunResult]) -> String {
    let mut out = String::from(
        "| Op | Model | Published | This crate | Read back | Solved at, median (mean) | \
         Sparsity error, median | Gave up | Stopped early, failing | Wall clock |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let rate = |k: usize, n: usize| {
        let (lo, hi) = wilson_interval(k, n, Z_95);
        let pct = |p: f64| format!("{:.0}%", 100.0 * p);
        format!(
            "{k}/{n} {} [{}, {}]",
            pct(k as f64 / n.max(1) as f64),
            pct(lo),
            pct(hi)
        )
    };
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let summaries = summarize(runs);
    for op in Operation::ALL {
        for s in summaries.iter().filter(|s| s.task == op) {
            let solved = s.median_solved_at_step.zip(s.mean_solved_at_step);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} |",
                op.formula(),
                s.model,
                or_dash(published(s, runs).map(|p| rate(p.successes, p.seeds))),
                rate(s.successes, s.runs),
                or_dash(
                    (s.learned)
                        .filter(|_| s.successes > 0)
                        .map(|k| format!("{k}/{}", s.successes))
                ),
                or_dash(solved.map(|(m, a)| format!(
                    "{} ({})",
                    format_metric(m),
                    format_metric(a)
                ))),
                or_dash(s.median_sparsity_error.map(format_metric)),
                s.gave_up,
                s.runs,
                s.stopped_early_failing,
                format_seconds(wall_clock(cell(runs, &s.model, s.task))),
            );
        }
    }
    let total = wall_clock(runs.iter());
    let _ = writeln!(
        out,
        "\nWall clock of these {} runs: {} ({:.1} hours).",
        thousands(runs.len() as f64),
        format_seconds(total),
        total / 3600.0
    );
    out
}

/// The runs of one cell: `model` ([`RunResult::label`]) on `task`.
fn cell<'a>(
    runs: &'a [RunResult],
    model: &str,
    task: Operation,
) -> impl Iterator<Item = &'a RunResult> {
    (runs.iter()).filter(move |r| r.task == task && r.label() == model)
}

/// What `runs` cost in wall-clock seconds: each population's clock (training and evaluation,
/// over every resume) shared evenly among the runs that trained in it, summed. Populations on
/// one core each, as nearly all of the table's are, make this core-seconds; it counts whatever
/// shared the machine with them, as a clock does.
fn wall_clock<'a>(runs: impl Iterator<Item = &'a RunResult>) -> f64 {
    runs.map(|r| r.wall_seconds / r.population.max(1) as f64)
        .sum()
}

/// Whole seconds with thousands separators: `12,345 s`.
fn format_seconds(seconds: f64) -> String {
    format!("{} s", thousands(seconds))
}

/// `x` rounded to a whole number (at least 0), its digits grouped by three: `12,345`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(d);
    }
    grouped
}

/// The tasks of `summaries`, each once, in order of first appearance.
fn tasks_in_order(summaries: &[TaskSummary]) -> Vec<Operation> {
    distinct(summaries.iter().map(|s| s.task))
}

/// `items` without repeats, in order of first appearance.
fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// The settings that decide the results of a run of many cells, as a results directory records
/// them (`run.json`): the task's, and the configuration of every cell, keyed `model/task` as the
/// command line names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The task's settings.
    pub protocol: TaskSettings,
    /// Each cell's configuration.
    pub configs: BTreeMap<String, TrainConfig>,
}

impl RunSettings {
    /// Whether a run with these settings may continue one made with `before`: the same task,
    /// and the same configuration for every cell both have (cells may be added). The error
    /// names the cell and the fields that differ.
    pub fn check_resume(&self, before: &RunSettings) -> Result<(), ExperimentError> {
        let json = |t: &TaskSettings| serde_json::to_string(t).unwrap_or_default();
        if self.protocol != before.protocol {
            return Err(ExperimentError::Resume(format!(
                "holds a run of another task ({} here, {} there)",
                json(&self.protocol),
                json(&before.protocol)
            )));
        }
        for (cell, config) in &self.configs {
            match before.configs.get(cell) {
                Some(old) if old != config => {
                    return Err(ExperimentError::Resume(format!(
                        "trained {cell} with other settings ({})",
                        differences(old, config).join("; ")
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `field: there → here` for each field of two configs that differs, as JSON writes them.
fn differences(there: &TrainConfig, here: &TrainConfig) -> Vec<String> {
    let object = |c: &TrainConfig| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (there, here) = (object(there), object(here));
    let fields = here.iter().filter(|(k, v)| there.get(*k) != Some(*v));
    fields
        .map(|(k, v)| {
            let old = there.get(k).map_or("absent".into(), ToString::to_string);
            format!("{k}: {old} there, {v} here")
        })
        .collect()
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file in the same directory,
/// synced, then renamed over `path`. A process killed at any instant leaves the old file or the
/// new one.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExperimentError> {
    let name = path
        .file_name()
        .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    let written = write().and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        ExperimentError::io(path, err)
    })
}

/// Writes `value` as pretty-printed JSON ([`write_file`]): the runs ([`RunResult`] fields, one
/// object per run), the per-task summaries ([`TaskSummary`]) or a run's settings.
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
            Ok(run) => runs.push(run),
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

/// Plots train, validation and extrapolation MSE per evaluation on a log scale, as SVG.
///
/// Values that are zero or not finite cannot sit on a log axis: they are left out. Written with
/// [`write_file`].
pub fn plot_history(
    path: &Path,
    title: &str,
    history: &[Evaluation],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_history(&mut svg, title, history).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_history`], as SVG text.
fn draw_history(
    svg: &mut String,
    title: &str,
    history: &[Evaluation],
) -> Result<(), Box<dyn std::error::Error>> {
    type Pick = fn(&Evaluation) -> f64;
    let series: [(&str, Pick, RGBColor); 3] = [
        ("train", |m| m.train_mse, BLUE),
        ("validation", |m| m.valid_mse, GREEN),
        ("extrapolation", |m| m.extrapolation_mse, RED),
    ];
    let points = |pick: Pick| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|m| (m.step as f64, pick(m)))
            .filter(|&(_, v)| v.is_finite() && v > 0.0)
            .collect()
    };
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| points(s.1))
        .map(|p| p.1)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(1.0);
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let last_step = history.last().map_or(1, |m| m.step.max(1)) as f64;

    let root = SVGBackend::with_string(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_step, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("MSE")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    for (name, pick, color) in series {
        chart
            .draw_series(LineSeries::new(points(pick), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One cell of [`plot_success_rates`]: a model on an operation, this crate's runs and, where
/// there is one, the published rate beside them.
#[derive(Clone, Debug)]
pub struct RateBar {
    /// The panel the cell is drawn in (its operation, `"a + b"`); one panel per group.
    pub group: String,
    /// The cell's name under its pair of points in the panel (`"nau"`).
    pub label: String,
    /// This crate's successful runs.
    pub successes: usize,
    /// This crate's runs.
    pub runs: usize,
    /// `(successes, seeds)` published for the same cell.
    pub published: Option<(usize, usize)>,
}

/// Plots success rates with their Wilson 95% intervals as the papers plot them: one panel per
/// group (operation), its cells side by side, this crate's runs (blue) and the published rate
/// (grey, where there is one), as SVG. Written with [`write_file`].
pub fn plot_success_rates(
    path: &Path,
    title: &str,
    bars: &[RateBar],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_success_rates(&mut svg, title, bars).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_success_rates`], as SVG text.
fn draw_success_rates(
    svg: &mut String,
    title: &str,
    bars: &[RateBar],
) -> Result<(), Box<dyn std::error::Error>> {
    let groups = distinct(bars.iter().map(|b| b.group.as_str()));
    let panels: Vec<Vec<&RateBar>> = groups
        .iter()
        .map(|&g| bars.iter().filter(|b| b.group == g).collect())
        .collect();
    // Up to three panels a row, each as wide as the widest needs.
    let widest = panels.iter().map(Vec::len).max().unwrap_or(1).max(2) as u32;
    let columns = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (
        columns as u32 * (100 + 110 * widest),
        40 + 300 * rows as u32,
    );
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let areas = root.split_evenly((rows, columns));
    for (k, ((panel, area), group)) in panels.iter().zip(&areas).zip(&groups).enumerate() {
        draw_panel(area, group, panel, k == 0)?;
    }
    root.present()?;
    Ok(())
}

/// One panel of [`draw_success_rates`]: its cells' rates, the legend on the first panel only.
fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    group: &str,
    bars: &[&RateBar],
    legend: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(group, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..100.0)?;
    let label = |x: &f64| {
        let i = x.round();
        let on_cell = (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < bars.len();
        if on_cell {
            bars[i as usize].label.clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&label)
        .disable_x_mesh()
        .y_labels(6)
        .y_desc("success (%), Wilson 95%")
        .draw()?;
    let series: [(&str, f64, RGBColor); 2] = [
        ("this crate", -0.12, BLUE),
        ("published", 0.12, RGBColor(120, 120, 120)),
    ];
    for (k, (name, offset, color)) in series.into_iter().enumerate() {
        let points: Vec<(f64, (usize, usize))> = bars
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let rate = if k == 0 {
                    Some((b.successes, b.runs))
                } else {
                    b.published
                };
                rate.map(|r| (i as f64 + offset, r))
            })
            .collect();
        let interval = |&(x, (k, n)): &(f64, (usize, usize))| {
            let (lo, hi) = wilson_interval(k, n, Z_95);
            PathElement::new(
                vec![(x, 100.0 * lo), (x, 100.0 * hi)],
                color.stroke_width(2),
            )
        };
        let rate = |&(x, (k, n)): &(f64, (usize, usize))| {
            Circle::new((x, 100.0 * k as f64 / n.max(1) as f64), 4, color.filled())
        };
        chart.draw_series(points.iter().map(interval))?;
        let drawn = chart.draw_series(points.iter().map(rate))?;
        if legend {
            drawn
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelKind, OptimizerKind, Protocol};

    #[test]
    fn metrics_format_compactly() {
        assert_eq!(format_metric(0.0), "0");
        assert_eq!(format_metric(0.006), "6.000e-3");
        assert_eq!(format_metric(123456.0), "1.235e5");
        assert_eq!(format_metric(f64::NAN), "NaN");
        assert_eq!(format_metric(f64::INFINITY), "inf");
    }

    #[test]
    fn wilson_interval_matches_hand_computed_values() {
        // 5 of 10: centre (0.5 + z²/20)/(1 + z²/10) = 0.5, half-width
        // z·√(0.025 + z²/400)/(1 + z²/10) = 0.26340 (z = 1.95996).
        let (lo, hi) = wilson_interval(5, 10, Z_95);
        assert!(
            (lo - 0.23659).abs() < 1e-5 && (hi - 0.76341).abs() < 1e-5,
            "{lo} {hi}"
        );
        // 0 of 10: [0, z²/(n + z²)] = [0, 3.84146/13.84146].
        let (lo, hi) = wilson_interval(0, 10, Z_95);
        assert!(lo == 0.0 && (hi - 0.27753).abs() < 1e-5, "{hi}");
        let (lo, hi) = wilson_interval(10, 10, Z_95);
        assert!(
            (lo - 0.72247).abs() < 1e-5 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
        // 1 of 4 at z = 1: p = 0.25, (0.25 + 0.125 ± √(0.046875 + 0.015625))/1.25 = 0.3 ± 0.2.
        let (lo, hi) = wilson_interval(1, 4, 1.0);
        assert!(
            (lo - 0.1).abs() < 1e-12 && (hi - 0.5).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    /// A run whose formula and message hold commas and quotes.
    fn run() -> RunResult {
        RunResult {
            model: ModelKind::NauNmu,
            task: Operation::Mul,
            protocol: Protocol::Madsen,
            seed: 3,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            batch_size: 128,
            hidden: 2,
            clip_norm: None,
            steps: 1000,
            best_step: 900,
            // A diverged run's losses may be infinite (JSON cannot hold them; CSV can).
            train_mse: f64::INFINITY,
            valid_mse: 0.25,
            extrapolation_mse: 1.5e-7,
            random_init_extrapolation_mse: 3.0,
            normalized_extrapolation_error: 5e-6,
            success_threshold: 0.16,
            success: true,
            solved_at_step: Some(700),
            formula: Some("(a, \"b\")·c".into()),
            formula_error: Some("no formula: 2 obstacle(s), sparsity error 0.4; \"x\", y".into()),
            sparsity_error: Some(0.01),
            formula_mse_vs_network: None,
            formula_mse_vs_targets: None,
            diverged_step: None,
            diverged_loss: None,
            stopped_at_step: Some(950),
            gave_up: false,
            snap_kept: Some(true),
            snapped_valid_mse: Some(1e-9),
            snapped_extrapolation_mse: None,
            snapped_success: Some(true),
            polish_kept: None,
            restarts: 0,
            inits: 8,
            init_seed: 3 ^ (5 << 40),
            population: 100,
            wall_seconds: 1.25,
            steps_per_second: 4000.0,
        }
    }

    /// Three successes (solved at 700, 800 and 3,000: median 800, mean 1,500), two of them read
    /// back as the target, a run that gave up and one the early stop ended short of the
    /// threshold: the row beside the published 98/100, and its wall clock.
    #[test]
    fn comparison_table_puts_the_published_rate_beside_ours() {
        let solved = |step, mse| RunResult {
            inits: 1,
            solved_at_step: Some(step),
            formula_mse_vs_targets: mse,
            ..run()
        };
        let gave_up = RunResult {
            success: false,
            solved_at_step: None,
            stopped_at_step: Some(2_100_000),
            gave_up: true,
            inits: 1,
            ..run()
        };
        // Converged on validation, above the extrapolation threshold when the early stop ended it.
        let near_miss = RunResult {
            success: false,
            solved_at_step: None,
            gave_up: false,
            inits: 1,
            ..run()
        };
        // Four runs in one population of 4 whose clock read 6,000 s, one alone for 2,500 s.
        let mut runs = [
            solved(700, Some(0.0)),
            solved(800, None),
            solved(3000, Some(0.0)),
            gave_up,
            near_miss,
        ];
        for (k, r) in runs.iter_mut().enumerate() {
            (r.population, r.wall_seconds) = if k < 4 { (4, 6_000.0) } else { (1, 2_500.0) };
        }
        let table = comparison_table(&runs);
        // Wilson for 3 of 5: (0.6 + z²/10 ± z·√(0.048 + z²/100))/(1 + z²/5) = 0.557 ± 0.326.
        let row = format!(
            "| {} | nau-nmu | 98/100 98% [93%, 99%] | 3/5 60% [23%, 88%] | 2/3 | 8.000e2 (1.500e3) | \
             1.000e-2 | 1/5 | 1 | 8,500 s |",
            Operation::Mul.formula()
        );
        assert!(table.contains(&row), "{table}");
        assert!(
            table.ends_with("\nWall clock of these 5 runs: 8,500 s (2.4 hours).\n"),
            "{table}"
        );
        // Not on their protocol: no published rate beside it.
        let reference: Vec<RunResult> = runs
            .iter()
            .map(|r| RunResult {
                protocol: Protocol::Reference,
                ..r.clone()
            })
            .collect();
        assert!(comparison_table(&reference).contains("nau-nmu | - | 3/5"));
    }

    #[test]
    fn seconds_print_whole_with_thousands_separators() {
        let printed: Vec<String> = [0.0, 999.4, 1_000.0, 58_109.2, 1_234_567.5]
            .map(format_seconds)
            .into();
        assert_eq!(
            printed,
            ["0 s", "999 s", "1,000 s", "58,109 s", "1,234,568 s"]
        );
    }

    #[test]
    fn csv_fields_with_commas_and_quotes_read_back_intact() {
        let run = run();
        let dir = std::env::temp_dir().join(format!("burn-nalu-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.csv");
        write_csv(&path, &[run.clone(), run.clone()]).unwrap();
        assert_eq!(read_csv(&path).unwrap(), [run.clone(), run.clone()]);
        // Runs that chose among initialisations are summarised apart from plain ones.
        let plain = RunResult {
            inits: 1,
            success: false,
            ..run.clone()
        };
        let summaries = summarize(&[run.clone(), plain]);
        let cells: Vec<(&str, usize)> = summaries
            .iter()
            .map(|s| (s.model.as_str(), s.successes))
            .collect();
        assert_eq!(cells, [("nau-nmu, best of 8", 1), ("nau-nmu", 0)]);
        let json = dir.join("results.json");
        let finite = RunResult {
            train_mse: 0.5,
            ..run
        };
        write_json(&json, std::slice::from_ref(&finite)).unwrap();
        assert_eq!(read_json::<Vec<RunResult>>(&json).unwrap(), [finite]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Seeds 0–1 trained again with seeds 2–3 in a second file (another population, other
    /// timings) count once; a copy that differs in an outcome refuses the later file.
    #[test]
    fn pooled_files_count_a_rerun_seed_once_and_refuse_a_different_one() {
        let dir = std::env::temp_dir().join(format!("burn-nalu-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, more) = (dir.join("first.csv"), dir.join("more.csv"));
        let seeds = |range: std::ops::Range<u64>, population| -> Vec<RunResult> {
            (range.map(|seed| RunResult {
                seed,
                population,
                wall_seconds: seed as f64,
                train_mse: 9.062249839431047e-10,
                ..run()
            }))
            .collect()
        };
        // Seed 0's training MSE in the last bits of its f32 batch sum (a NAC rerun of
        // 2 December: 2.4e-7 apart relatively, within 127·2⁻²⁴ = 7.6e-6).
        let mut rerun = seeds(0..4, 4);
        rerun[0].train_mse = 9.062247618984998e-10;
        write_csv(&first, &seeds(0..2, 2)).unwrap();
        write_csv(&more, &rerun).unwrap();
        let pooled = read_pooled(&[&first, &more]).unwrap();
        let kept: Vec<(u64, usize)> = pooled.iter().map(|r| (r.seed, r.population)).collect();
        assert_eq!(kept, [(0, 2), (1, 2), (2, 4), (3, 4)]);
        let refused = |runs: &[RunResult]| {
            write_csv(&more, runs).unwrap();
            read_pooled(&[&first, &more]).unwrap_err().to_string()
        };
        // Seed 1 with another outcome: not the same run, so not pooled.
        let mut differs = rerun.clone();
        differs[1].extrapolation_mse *= 2.0;
        let err = refused(&differs);
        assert!(
            err.contains("more.csv") && err.contains("seed 1 of nau-nmu"),
            "{err}"
        );
        // A training MSE further off than the batch's rounding: another run too.
        let mut differs = rerun;
        differs[0].train_mse *= 1.0 + 1e-4;
        let err = refused(&differs);
        assert!(err.contains("seed 0 of nau-nmu"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A CSV cut mid-row (a writer killed by an older version, which wrote in place) keeps
    /// every complete row and names the one it drops; the strict reader refuses it.
    #[test]
    fn a_torn_csv_keeps_its_complete_rows() {
        let dir = std::env::temp_dir().join(format!("burn-nalu-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.csv");
        let runs: Vec<RunResult> = (0..3).map(|seed| RunResult { seed, ..run() }).collect();
        write_csv(&path, &runs).unwrap();
        let whole = std::fs::read(&path).unwrap();
        // No temporary file is left beside the results.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["results.csv"]);
        let last_row = whole[..whole.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        std::fs::write(&path, &whole[..last_row + 20]).unwrap();
        let (kept, dropped) = read_csv_rows(&path).unwrap();
        assert_eq!(kept, runs[..2]);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].to_string(), "line 4: cut short (no end of line)");
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("results.csv: line 4: cut short (no end of line)"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median([f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn success_figure_draws_each_rate_with_its_interval() {
        let bar = |group: &str, label: &str, successes, published| RateBar {
            group: group.into(),
            label: label.into(),
            successes,
            runs: 10,
            published,
        };
        let bars = [
            bar("add", "nau", 10, Some((100, 100))),
            bar("div", "nmu", 3, None),
        ];
        let mut svg = String::new();
        draw_success_rates(&mut svg, "rates", &bars).unwrap();
        // One panel per operation, each cell named by its model.
        let text = |t: &str| svg.contains(&format!("\n{t}\n</text>"));
        assert!(
            text("add") && text("div") && text("nau") && text("nmu"),
            "{svg}"
        );
        // Three rates (the second cell has no published one) and the legend's two markers.
        assert_eq!(svg.matches("<circle").count(), 3 + 2);
    }
}
