//! Per-task summaries over seeds and their statistics: success rates with Wilson intervals,
//! medians and means of what the runs of a cell measured.

use serde::{Deserialize, Serialize};

use crate::task::Operation;
use crate::train::RunResult;

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
    /// Runs whose extrapolation MSE is below their success threshold (of the model each keeps:
    /// polished and snapped where its recipe kept those).
    pub successes: usize,
    /// Successful runs whose formula reads back as the target ([`RunResult::learned`]);
    /// `None` for a model the formula module cannot read (iNALU, the recurrent models).
    #[serde(default)]
    pub learned: Option<usize>,
    /// With polish or snap on: runs whose checkpoint before them succeeds (a diagnostic: what
    /// the recipe's last steps added).
    #[serde(default)]
    pub plain_successes: Option<usize>,
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
    /// ([`TrainConfig::early_stop_patience`](crate::TrainConfig::early_stop_patience)): converged on validation data, above the
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
                plain_successes: runs
                    .iter()
                    .map(|r| r.plain_success.map(usize::from))
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

/// The runs of one cell: `model` ([`RunResult::label`]) on `task`.
pub(super) fn cell<'a>(
    runs: &'a [RunResult],
    model: &str,
    task: Operation,
) -> impl Iterator<Item = &'a RunResult> {
    (runs.iter()).filter(move |r| r.task == task && r.label() == model)
}

/// `items` without repeats, in order of first appearance.
pub(super) fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}
