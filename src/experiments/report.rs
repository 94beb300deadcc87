//! Reports: the results table, per-task summaries over seeds, JSON, CSV and loss-curve plots.

use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::{EpochMetrics, ModelKind, Operation, Protocol, RunResult};

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

/// What happened to a run, in a few words.
pub fn status(result: &RunResult) -> String {
    match (&result.diverged, result.success) {
        (Some(d), _) => format!("diverged (epoch {}, step {})", d.epoch, d.step),
        (None, true) => "solved".into(),
        (None, false) => "not solved".into(),
    }
}

/// The results table, one row per run, in the Keras reference's shape (operation, train loss,
/// extrapolated test loss) plus validation loss, normalised error, epochs, time and speed.
pub fn results_table(results: &[RunResult]) -> String {
    let mut out = String::from(
        "| Model | Operation | Seed | Train Loss | Extrapolated Test Loss | Valid Loss | \
         Norm. Error | Best / Run Epochs | Wall s | Steps/s | Status |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {} / {} | {:.2} | {:.0} | {} |",
            r.model,
            r.task.formula(),
            r.seed,
            format_metric(r.train_mse),
            format_metric(r.extrapolation_mse),
            format_metric(r.valid_mse),
            r.normalized_extrapolation_error,
            r.best_epoch,
            r.epochs_run,
            r.wall_seconds,
            r.steps_per_second,
            status(r),
        );
    }
    out
}

/// A model's results on a task over several seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskSummary {
    /// The model.
    pub model: ModelKind,
    /// The task.
    pub task: Operation,
    /// Number of runs (seeds).
    pub runs: usize,
    /// Runs whose extrapolation MSE is below their success threshold.
    pub successes: usize,
    /// Runs that diverged.
    pub diverged: usize,
    /// Wilson 95% confidence interval of the success rate, `(lower, upper)`.
    pub success_rate_ci: (f64, f64),
    /// Median over the successful runs of the step at which each was first solved.
    pub median_solved_at_step: Option<f64>,
    /// Median sparsity error of the successful runs (where the units have one).
    pub median_sparsity_error: Option<f64>,
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

/// Groups `results` by model and task (in order of first appearance) and summarises each group.
pub fn summarize(results: &[RunResult]) -> Vec<TaskSummary> {
    let mut groups: Vec<(ModelKind, Operation)> = Vec::new();
    for r in results {
        if !groups.contains(&(r.model, r.task)) {
            groups.push((r.model, r.task));
        }
    }
    groups
        .into_iter()
        .map(|(model, task)| {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| (r.model, r.task) == (model, task))
                .collect();
            let successes: Vec<&&RunResult> = runs.iter().filter(|r| r.success).collect();
            TaskSummary {
                model,
                task,
                runs: runs.len(),
                successes: successes.len(),
                success_rate_ci: wilson_interval(successes.len(), runs.len(), Z_95),
                median_solved_at_step: median_of_some(
                    successes.iter().map(|r| r.solved_at_step.map(|s| s as f64)),
                ),
                median_sparsity_error: median_of_some(
                    successes.iter().map(|r| r.readback.sparsity_error),
                ),
                diverged: runs.iter().filter(|r| r.diverged.is_some()).count(),
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
        "| Model | Operation | Success | 95% CI | Diverged | Solved At (median step) | \
         Sparsity Error (median) | Median Extrapolated Test Loss | Median Norm. Error |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | [{:.2}, {:.2}] | {} | {} | {} | {} | {:.3} |",
            s.model,
            s.task.formula(),
            s.successes,
            s.runs,
            s.success_rate_ci.0,
            s.success_rate_ci.1,
            s.diverged,
            or_dash(s.median_solved_at_step.map(|v| format!("{v:.0}"))),
            or_dash(s.median_sparsity_error.map(format_metric)),
            format_metric(s.median_extrapolation_mse),
            s.median_normalized_error,
        );
    }
    out
}

/// Success counts with tasks as rows and models as columns (`9/10`; `-` where not run).
pub fn success_matrix(summaries: &[TaskSummary]) -> String {
    let mut models: Vec<ModelKind> = Vec::new();
    let mut tasks: Vec<Operation> = Vec::new();
    for s in summaries {
        if !models.contains(&s.model) {
            models.push(s.model);
        }
        if !tasks.contains(&s.task) {
            tasks.push(s.task);
        }
    }
    let names: Vec<&str> = models.iter().map(|m| m.name()).collect();
    let mut out = format!(
        "| Operation | {} |\n|---|{}\n",
        names.join(" | "),
        "---|".repeat(models.len())
    );
    for task in tasks {
        let cells: Vec<String> = models
            .iter()
            .map(
                |&m| match summaries.iter().find(|s| (s.model, s.task) == (m, task)) {
                    Some(s) => format!("{}/{}", s.successes, s.runs),
                    None => "-".into(),
                },
            )
            .collect();
        let _ = writeln!(out, "| {} | {} |", task.formula(), cells.join(" | "));
    }
    out
}

/// Writes `value` as pretty-printed JSON: the runs ([`RunResult`] fields, one object per run)
/// or the per-task summaries ([`TaskSummary`]).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), Box<dyn Error>> {
    let mut file = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut file, value)?;
    writeln!(file)?;
    Ok(())
}

/// Column names of [`write_csv`].
pub const CSV_HEADER: &str = "model,task,optimizer,seed,lr,batch_size,hidden,clip_norm,epochs_run,\
best_epoch,train_mse,valid_mse,extrapolation_mse,random_init_extrapolation_mse,\
normalized_extrapolation_error,protocol,success_threshold,success,solved_at_step,diverged_epoch,\
diverged_step,restarts,steps,wall_seconds,steps_per_second,sparsity_error,formula";

/// Writes `results` as CSV, one row per run (empty cells for absent values).
pub fn write_csv(path: &Path, results: &[RunResult]) -> Result<(), Box<dyn Error>> {
    let mut file = BufWriter::new(File::create(path)?);
    writeln!(file, "{CSV_HEADER}")?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in results {
        writeln!(
            file,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.model,
            r.task,
            r.optimizer,
            r.seed,
            r.lr,
            r.batch_size,
            r.hidden,
            opt(r.clip_norm.map(|c| c.to_string())),
            r.epochs_run,
            r.best_epoch,
            r.train_mse,
            r.valid_mse,
            r.extrapolation_mse,
            r.random_init_extrapolation_mse,
            r.normalized_extrapolation_error,
            protocol_name(&r.protocol),
            r.success_threshold,
            r.success,
            opt(r.solved_at_step.map(|s| s.to_string())),
            opt(r.diverged.map(|d| d.epoch.to_string())),
            opt(r.diverged.map(|d| d.step.to_string())),
            r.restarts,
            r.steps,
            r.wall_seconds,
            r.steps_per_second,
            opt(r.readback.sparsity_error.map(|e| e.to_string())),
            opt(r
                .readback
                .formula
                .as_ref()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))),
        )?;
    }
    file.flush()?;
    Ok(())
}

/// `reference` or `madsen`.
pub fn protocol_name(protocol: &Protocol) -> &'static str {
    match protocol {
        Protocol::Reference => "reference",
        Protocol::Madsen(_) => "madsen",
    }
}

/// Plots train, validation and extrapolation MSE per epoch on a log scale, as SVG.
///
/// Values that are zero or not finite cannot sit on a log axis: they are left out.
pub fn plot_history(
    path: &Path,
    title: &str,
    history: &[EpochMetrics],
) -> Result<(), Box<dyn Error>> {
    type Pick = fn(&EpochMetrics) -> f64;
    let series: [(&str, Pick, RGBColor); 3] = [
        ("train", |m| m.train_mse, BLUE),
        ("validation", |m| m.valid_mse, GREEN),
        ("extrapolation", |m| m.extrapolation_mse, RED),
    ];
    let points = |pick: Pick| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|m| (m.epoch as f64, pick(m)))
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
    let last_epoch = history.last().map_or(1, |m| m.epoch.max(1)) as f64;

    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_epoch, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median([f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert!(median(std::iter::empty()).is_nan());
    }
}
