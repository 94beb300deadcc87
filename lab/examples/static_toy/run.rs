//! Training the planned populations: `--jobs` workers, progress bars, checkpoints, and the
//! results written into `--out` as each population finishes.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use burn_nalu_lab::report::{self, RunSettings, format_metric};
use burn_nalu_lab::{
    Checkpointing, ExperimentError, ModelChoice, ModelKind, Operation, Progress, RunResult, Task,
    TrainedRun, train_population, train_population_checkpointed,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::args::Cli;

/// One population to train: a model, a task and a range of seeds.
#[derive(Clone, Debug)]
pub struct Work {
    choice: ModelChoice,
    model: ModelKind,
    inits: usize,
    op: Operation,
    seeds: Vec<u64>,
}

impl Work {
    /// Whether `r` is one of this population's runs.
    pub fn holds(&self, r: &RunResult) -> bool {
        (r.model, r.task, r.inits) == (self.model, self.op, self.inits)
            && self.seeds.contains(&r.seed)
    }
}

/// The populations of the run, in report order: per model, per task, seeds in chunks.
pub fn plan(cli: &Cli) -> Vec<Work> {
    let (tasks, models) = cli.selection();
    let seeds = cli.seed_values();
    let chunk = cli.population.unwrap_or(seeds.len());
    let mut work = Vec::new();
    for &choice in &models {
        for &op in &tasks {
            let config = cli.checked_config(choice, op);
            for part in seeds.chunks(chunk) {
                work.push(Work {
                    choice,
                    model: config.model,
                    inits: config.inits_per_seed,
                    op,
                    seeds: part.to_vec(),
                });
            }
        }
    }
    work
}

/// A finished population, sent from a worker to the main thread.
type Finished = (usize, Work, Result<Vec<TrainedRun>, ExperimentError>);

pub fn run(cli: &Cli, task: &dyn Task, kept: Vec<RunResult>) -> Result<(), ExperimentError> {
    let started = Instant::now();
    let device = Device::default();
    let work = plan(cli);
    // Each population's kept runs; what is missing of it is trained.
    let mut results: Vec<Vec<RunResult>> = (work.iter())
        .map(|w| kept.iter().filter(|r| w.holds(r)).cloned().collect())
        .collect();
    let todo: VecDeque<(usize, Work)> = (work.iter().enumerate())
        .filter_map(|(k, w)| missing(w, &results[k]).map(|w| (k, w)))
        .collect();
    if !cli.quiet {
        println!(
            "static toy ({} protocol): {} population(s) of up to {} seed(s) to train ({} kept) \
             on {device:?}, {} at a time",
            task.protocol(),
            todo.len(),
            cli.population.unwrap_or(cli.seed_values().len()),
            work.len() - todo.len(),
            cli.jobs
        );
    }
    let bars = MultiProgress::new();
    if cli.quiet || !std::io::stdout().is_terminal() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let settings = cli.settings(task);
    let queue = Mutex::new(todo);
    let (send, receive) = mpsc::channel::<Finished>();
    std::thread::scope(|scope| -> Result<(), ExperimentError> {
        for _ in 0..cli.jobs {
            let (queue, send, bars, device) = (&queue, send.clone(), &bars, &device);
            scope.spawn(move || {
                let pool = job_pool(cli.jobs);
                loop {
                    // The queue's lock is released here, before training: held in a `while let`
                    // it would serialise the jobs.
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((k, w)) = next else { return };
                    let train = || train_work(cli, task, &w, device, bars);
                    let runs = match &pool {
                        Some(pool) => pool.install(train),
                        None => train(),
                    };
                    if send.send((k, w, runs)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        for (k, w, runs) in receive {
            let runs = runs?;
            save_population(cli, &runs)?;
            if !cli.quiet {
                print_population(&runs, &bars);
            }
            results[k].extend(runs.into_iter().map(|r| r.result));
            results[k].sort_by_key(|r| r.seed);
            if let Some(dir) = &cli.out {
                write_results(dir, &settings, &results)?;
                remove_if_there(&checkpoint_path(dir, &w))?;
            }
        }
        Ok(())
    })?;
    report_all(cli, results.into_iter().flatten().collect());
    if !cli.quiet {
        println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The part of `w` whose seeds `kept` lacks, if any.
fn missing(w: &Work, kept: &[RunResult]) -> Option<Work> {
    let seeds: Vec<u64> = (w.seeds.iter().copied())
        .filter(|&s| !kept.iter().any(|r| r.seed == s))
        .collect();
    (!seeds.is_empty()).then(|| Work { seeds, ..w.clone() })
}

/// The closing tables: every run (when few), per operation, per task and model.
fn report_all(cli: &Cli, all: Vec<RunResult>) {
    if all.len() <= 60 {
        println!("\n{}", report::results_table(&all));
    }
    let summaries = report::summarize(&all);
    if cli.selection().1.len() > 1 {
        println!("Per operation:\n\n{}", report::verdict_table(&summaries));
    }
    if cli.seed_values().len() > 1 {
        println!("{}", report::summary_table(&summaries));
        if cli.selection().1.len() > 1 {
            println!(
                "Successes per task and model (of which the formula read back as the target):\n\n{}",
                report::success_matrix(&summaries)
            );
        }
    }
}

/// With several jobs, each its own share of the cores for the kernels' parallel loops: sharing
/// rayon's global pool, the jobs' loops would queue behind each other.
fn job_pool(jobs: usize) -> Option<rayon::ThreadPool> {
    if jobs == 1 {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads((cores / jobs).max(1))
        .build()
        .ok()
}

/// How often a population reports its progress as a plain line when there is no terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Trains one population, with a progress bar (or plain lines, see [`PLAIN_PROGRESS_EVERY`]).
fn train_work(
    cli: &Cli,
    task: &dyn Task,
    w: &Work,
    device: &Device,
    bars: &MultiProgress,
) -> Result<Vec<TrainedRun>, ExperimentError> {
    // Each seed's data comes from its own generators: drawn on rayon's threads, the same data
    // (the evaluation rows and their thresholds: seconds for 100 seeds of Madsen's task).
    let data = w
        .seeds
        .par_iter()
        .map(|&seed| task.data(w.op, seed))
        .collect();
    let config = cli.checked_config(w.choice, w.op);
    let bar = bars.add(ProgressBar::new(1));
    let style = ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} steps {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    let (first, last) = (w.seeds[0], w.seeds[w.seeds.len() - 1]);
    let prefix = format!("{} {} seeds {first}..={last}", w.model, w.op);
    bar.set_prefix(prefix.clone());
    // Without a terminal for the bar (a run in the background, its output to a file), a plain
    // line now and then, so that a long population shows where it is.
    let plain = !cli.quiet && !std::io::stdout().is_terminal();
    let mut printed = Instant::now();
    let on_eval = &mut |p: &Progress| {
        let message = format!(
            "{}/{} training, best valid MSE {}",
            p.active,
            p.members,
            format_metric(p.best_valid_mse)
        );
        if plain && printed.elapsed() >= PLAIN_PROGRESS_EVERY {
            eprintln!("{prefix}: step {}/{}, {message}", p.step, p.steps);
            printed = Instant::now();
        }
        bar.set_length(p.steps as u64);
        bar.set_position(p.step as u64);
        bar.set_message(message);
    };
    let runs = match &cli.out {
        Some(dir) => {
            let path = checkpoint_path(dir, w);
            if !cli.resume {
                remove_if_there(&path)?;
            } else if path.exists() && !cli.quiet {
                eprintln!(
                    "{prefix}: continuing from its checkpoint {}",
                    path.display()
                );
            }
            let every = Duration::from_secs_f64(cli.checkpoint_every.unwrap_or(10.0) * 60.0);
            let checkpoint = Checkpointing { path, every };
            train_population_checkpointed(data, &config, device, on_eval, &checkpoint)
        }
        None => train_population(data, &config, device, on_eval),
    };
    bar.finish_and_clear();
    runs
}

/// The training checkpoint of population `w` in `dir`.
fn checkpoint_path(dir: &Path, w: &Work) -> PathBuf {
    let (first, last) = (w.seeds[0], w.seeds[w.seeds.len() - 1]);
    let inits = match w.inits {
        1 => String::new(),
        k => format!("-best-of-{k}"),
    };
    dir.join(format!(
        "{}-{}{inits}-seeds{first}-{last}.checkpoint",
        w.model, w.op
    ))
}

/// Removes `path` if it is there.
fn remove_if_there(path: &Path) -> Result<(), ExperimentError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ExperimentError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Saves each run's best weights and loss plot into `--out`.
fn save_population(cli: &Cli, runs: &[TrainedRun]) -> Result<(), ExperimentError> {
    let Some(dir) = &cli.out else {
        return Ok(());
    };
    for run in runs {
        let r = &run.result;
        let stem = format!("{}-{}-seed{}", r.model, r.task, r.seed);
        report::save_model(&dir.join(format!("{stem}.bpk")), run.model.clone())?;
        let title = format!("{}, {} (seed {}): MSE per step", r.model, r.task, r.seed);
        report::plot_history(&dir.join(format!("{stem}.svg")), &title, &run.history)?;
    }
    Ok(())
}

/// Rewrites the results of every finished population (in report order) and the settings, each
/// file replaced whole.
fn write_results(
    dir: &Path,
    settings: &RunSettings,
    results: &[Vec<RunResult>],
) -> Result<(), ExperimentError> {
    let all: Vec<RunResult> = results.iter().flatten().cloned().collect();
    report::write_json(&dir.join("run.json"), settings)?;
    report::write_json(&dir.join("results.json"), &all)?;
    report::write_csv(&dir.join("results.csv"), &all)?;
    report::write_json(&dir.join("summary.json"), &report::summarize(&all))
}

/// One line per run for small populations; one line for the population otherwise.
fn print_population(runs: &[TrainedRun], bars: &MultiProgress) {
    let lines: Vec<String> = match runs.len() {
        0..=10 => runs.iter().flat_map(|r| run_lines(&r.result)).collect(),
        n => {
            let r = &runs[0].result;
            let solved = runs.iter().filter(|r| r.result.success).count();
            let diverged = runs
                .iter()
                .filter(|r| r.result.diverged_step.is_some())
                .count();
            vec![format!(
                "{:>7} {:>6} seeds {}..={}: {solved}/{n} solved, {diverged} diverged, {:.1} s \
                 ({:.0} seed-steps/s)",
                r.model,
                r.task,
                r.seed,
                runs[n - 1].result.seed,
                r.wall_seconds,
                r.steps_per_second * n as f64
            )]
        }
    };
    for line in lines {
        let _ = bars.println(&line);
        if bars.is_hidden() {
            println!("{line}");
        }
    }
}

fn run_lines(r: &RunResult) -> Vec<String> {
    let mut first = format!(
        "{:>7} {:>6} seed {:<3} extrapolation MSE {:>10}  train MSE {:>10}  {:.1} s  {}",
        r.model,
        r.task,
        r.seed,
        format_metric(r.extrapolation_mse),
        format_metric(r.train_mse),
        r.wall_seconds,
        r.status(),
    );
    if r.diverged_step.is_some() {
        first += &format!(" (kept the checkpoint of step {})", r.best_step);
    }
    let second = match (&r.formula, &r.formula_error) {
        (Some(f), _) => {
            let vs_network = r.formula_mse_vs_network.unwrap_or(f64::NAN);
            // "learned" only for the target itself; a formula that does not reproduce the
            // network is only what its weights round to.
            let verb = match (r.learned(), vs_network < r.success_threshold) {
                (true, _) => "learned",
                (false, true) => "computes",
                (false, false) => "rounds to",
            };
            Some(format!(
                "{:>21} {verb} {f}  (sparsity error {}; formula vs network MSE {}, vs targets {})",
                "",
                format_metric(r.sparsity_error.unwrap_or(f64::NAN)),
                format_metric(vs_network),
                format_metric(r.formula_mse_vs_targets.unwrap_or(f64::NAN)),
            ))
        }
        (None, Some(err)) => Some(format!("{:>21} {err}", "")),
        (None, None) => None,
    };
    std::iter::once(first).chain(second).collect()
}
