//! Reports: the results table, per-task summaries over seeds, JSON, CSV and loss-curve plots.

use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::{EpochMetrics, ModelKind, Operation, RunResult};

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
    /// Median extrapolation MSE over the runs.
    pub median_extrapolation_mse: f64,
    /// Median normalised extrapolation error over the runs.
    pub median_normalized_error: f64,
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
            TaskSummary {
                model,
                task,
                runs: runs.len(),
                successes: runs.iter().filter(|r| r.success).count(),
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
        "| Model | Operation | Success | Diverged | Median Extrapolated Test Loss | \
         Median Norm. Error |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | {} | {} | {:.3} |",
            s.model,
            s.task.formula(),
            s.successes,
            s.runs,
            s.diverged,
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

/// Writes `results` as a JSON array, one object per run with the fields of [`RunResult`].
pub fn write_json(path: &Path, results: &[RunResult]) -> Result<(), Box<dyn Error>> {
    let mut file = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut file, results)?;
    writeln!(file)?;
    Ok(())
}

/// Column names of [`write_csv`].
pub const CSV_HEADER: &str = "model,task,optimizer,seed,lr,batch_size,hidden,clip_norm,epochs_run,\
best_epoch,train_mse,valid_mse,extrapolation_mse,random_init_extrapolation_mse,\
normalized_extrapolation_error,success_threshold,success,diverged_epoch,diverged_step,restarts,\
steps,wall_seconds,steps_per_second";

/// Writes `results` as CSV, one row per run (empty cells for absent values).
pub fn write_csv(path: &Path, results: &[RunResult]) -> Result<(), Box<dyn Error>> {
    let mut file = BufWriter::new(File::create(path)?);
    writeln!(file, "{CSV_HEADER}")?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in results {
        writeln!(
            file,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
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
            r.success_threshold,
            r.success,
            opt(r.diverged.map(|d| d.epoch.to_string())),
            opt(r.diverged.map(|d| d.step.to_string())),
            r.restarts,
            r.steps,
            r.wall_seconds,
            r.steps_per_second,
        )?;
    }
    file.flush()?;
    Ok(())
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
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median([f64::NAN, 1.0, 2.0].into_iter()), 2.0);
        assert!(median(std::iter::empty()).is_nan());
    }
}
