//! The text tables reports print: one row per run, the per-task summary, the verdict and the
//! success matrix, and Madsen & Johansen's table with this crate's runs beside it.

use std::fmt::Write as _;

use super::stats::{TaskSummary, Z_95, cell, distinct, summarize, wilson_interval};
use crate::madsen::{PublishedRate, published_rate};
use crate::protocol::Protocol;
use crate::stacks::ModelKind;
use crate::task::Operation;
use crate::train::RunResult;

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

/// The per-task success table printed for several seeds.
pub fn summary_table(summaries: &[TaskSummary]) -> String {
    let mut out = String::from(
        "| Model | Operation | Success | 95% CI | Learned (formula) | Diverged | \
         Solved At (median step) | Sparsity Error (median) | Median Extrapolated Test Loss | \
         Median Norm. Error | Success before polish and snap |\n\
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
            or_dash(s.plain_successes.map(|k| format!("{k}/{}", s.runs))),
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

/// What `runs` cost in wall-clock seconds: each population's clock (training and evaluation,
/// over every resume) shared evenly among the runs that trained in it, summed. Populations on
/// one core each, as nearly all of the table's are, make this core-seconds; it counts whatever
/// shared the machine with them, as a clock does.
fn wall_clock<'a>(runs: impl Iterator<Item = &'a RunResult>) -> f64 {
    runs.map(|r| r.wall_seconds / r.population.max(1) as f64)
        .sum()
}

/// Whole seconds with thousands separators: `12,345 s`.
pub(super) fn format_seconds(seconds: f64) -> String {
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
