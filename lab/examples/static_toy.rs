//! The static arithmetic experiments: the NALU paper's static toy task (Trask et al. 2018,
//! Table 1, as the Keras reference ran it) and Madsen & Johansen 2020's.
//!
//! `cargo run --release --example static_toy -- --help` lists the options. A thin command line
//! over `burn_nalu_lab`: the seeds of each model and task train as one population,
//! `--jobs` populations at a time; results are written as each population finishes.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use burn_nalu::RegularizerSchedule;
use burn_nalu_lab::report::{self, RunSettings, format_metric};
use burn_nalu_lab::{
    Budget, Checkpointing, ExperimentError, ModelChoice, ModelKind, Operation, OptimizerKind,
    Progress, Protocol, RunResult, Task, TaskOptions, TrainConfig, TrainedRun, train_population,
    train_population_checkpointed,
};
use clap::Parser;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// Train models of arithmetic units on the static arithmetic tasks (and their recurrent and
/// sequential forms) and report train and extrapolation loss, success rates and the learned
/// formulas.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Task to run (repeatable; default: all six).
    #[arg(long = "task", value_name = "NAME", value_parser = names(&Operation::ALL, Operation::name))]
    tasks: Vec<Operation>,
    /// Model: one of the stacks below, all of them, or recommended (the stack and recipe
    /// this crate recommends for each task of the reference or madsen protocol); repeatable;
    /// default: nalu and recommended, nalu with --protocol madsen or mistry, nalu-rnn with
    /// recurrent, nau-cell and nmu-cell with sequential.
    #[arg(long = "model", value_name = "NAME", value_parser = model_choices())]
    models: Vec<Vec<ModelChoice>>,
    /// Data and success criterion: reference (the Keras reference's task), madsen (Madsen &
    /// Johansen 2020: overlapping subsets, fresh batches from U[1, 2), extrapolation U[2, 6),
    /// threshold from weights off by 1e-5, their recipes), mistry (Mistry et al.'s
    /// single-module division task), recurrent (the NALU paper's recurrent task: sums over
    /// sequences of 10 steps, extrapolation to 100 steps of doubled inputs) or sequential
    /// (Madsen & Johansen's running sums and products of digits, scored at every step).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "reference",
        value_parser = names(&Protocol::ALL, Protocol::name)
    )]
    protocol: Protocol,
    /// With --protocol madsen: size of each subset as a fraction of the inputs.
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    subset_ratio: Option<f64>,
    /// With --protocol madsen: fraction of a subset that a and b share.
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    overlap_ratio: Option<f64>,
    /// With --protocol madsen: training and validation inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    interpolation_range: Option<(f32, f32)>,
    /// With --protocol madsen: extrapolation inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    extrapolation_range: Option<(f32, f32)>,
    /// With --protocol madsen, mistry, recurrent or sequential: rows of the validation and of
    /// the extrapolation split.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    eval_rows: Option<usize>,
    /// With --protocol mistry: inputs per row (2, or 10 as the authors; default 10).
    #[arg(long, value_name = "N")]
    inputs: Option<usize>,
    /// With --protocol mistry: which of the nine input ranges, 0 to 8 ([−20, −10] → [−40, −20],
    /// [−2, −1] → [−6, −2], [−1.2, −1.1] → [−6.1, −1.2], [−0.2, −0.1] → [−2, −0.2], [−2, 2] →
    /// [−6, −2] ∪ [2, 6], [0.1, 0.2] → [0.2, 2], [1, 2] → [2, 6], [1.1, 1.2] → [1.2, 6],
    /// [10, 20] → [20, 40]; default 6).
    #[arg(long, value_name = "K")]
    range: Option<usize>,
    /// With --protocol recurrent or sequential: steps of a training sequence (default 10; 2
    /// for sequential products).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    time: Option<usize>,
    /// With --protocol recurrent or sequential: steps of an extrapolation sequence (default
    /// 100; 1,000 for sequential sums, 20 for products).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    extrapolation_time: Option<usize>,
    /// Optimizer, with Keras's defaults (default: the model's recipe).
    #[arg(long, value_name = "NAME", value_parser = names(&OptimizerKind::ALL, OptimizerKind::name))]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (default: the model's recipe).
    #[arg(long, value_parser = positive_f64)]
    lr: Option<f64>,
    /// Epochs over the training rows (reference protocol; default: the model's recipe).
    #[arg(long, value_parser = at_least_one)]
    epochs: Option<usize>,
    /// Optimizer steps (default: the model's recipe).
    #[arg(long, value_parser = at_least_one)]
    steps: Option<usize>,
    /// Evaluate every N steps (default: every epoch, or the recipe's period).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    eval_every: Option<usize>,
    /// Train the whole budget, without the madsen recipes' early stop.
    #[arg(long)]
    no_early_stop: bool,
    /// Also stop a run whose validation MSE is more than 10 times its threshold once, after
    /// the regulariser's ramp, it has not improved by 1% for N evaluations, nor for the later
    /// half of the run (counted as given up).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    give_up: Option<usize>,
    /// Also try each run's best weights snapped to their discrete values, kept when they do no
    /// worse on validation; reported beside the plain results ("Success, snapped").
    #[arg(long)]
    snap: bool,
    /// Polish each run's best weights with Levenberg–Marquardt on training rows (f64), kept when
    /// they do better on validation; polished runs are reported under their own label.
    #[arg(long)]
    polish: bool,
    /// Train each seed from N initialisations and keep, per seed, the one with the lowest
    /// validation MSE (restarts chosen on validation data; reported with its count).
    /// (Default: the recipe's, 1 but for the recommended ÷ and √.)
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    inits: Option<usize>,
    /// Final weight of the sparsity regulariser (default: the model's recipe; 0 turns it off).
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    reg_lambda: Option<f64>,
    /// Step at which the regulariser starts to ramp up (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    reg_start: Option<usize>,
    /// Step at which the regulariser reaches its final weight (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    reg_end: Option<usize>,
    /// Mini-batch size (default: the recipe's, 64 reference, 128 madsen).
    #[arg(long, value_parser = at_least_one)]
    batch_size: Option<usize>,
    /// Width of the hidden layer.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    hidden: usize,
    /// Clip each parameter's gradient to this L2 norm (default: no clipping).
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    clip_norm: Option<f64>,
    /// The first seed of the data, the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run K seeds, from --seed on, and report per task the success rate and medians.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = at_least_one)]
    seeds: usize,
    /// Train at most N seeds as one population (default: all of a model's seeds of a task).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    population: Option<usize>,
    /// Train N populations at a time, on N threads (each with its share of the cores).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    jobs: usize,
    /// Write results.json, results.csv, summary.json and run.json (the settings) into DIR as
    /// each population finishes, with the best weights (MODEL-TASK-seedS.bpk) and loss plots
    /// (MODEL-TASK-seedS.svg) of each run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out DIR: skip the populations whose results it holds, continue a
    /// cut-off population from its checkpoint; refuse if DIR was made with other settings.
    #[arg(long)]
    resume: bool,
    /// With --out DIR: write each population's whole training state into DIR every M minutes
    /// (default 10; MODEL-TASK-seedsA-B.checkpoint, removed once its results are written),
    /// where --resume continues it exactly as it would have gone on; 0: at every evaluation.
    #[arg(long, value_name = "M", value_parser = non_negative_f64)]
    checkpoint_every: Option<f64>,
    /// Print only the results.
    #[arg(long)]
    quiet: bool,
    /// Train nothing: plot the success rates of the results CSVs given with --from (each
    /// model and task with its Wilson 95% interval, beside Madsen & Johansen's published rate
    /// for the cells of their protocol that have one) into FILE, as SVG, and print them as a
    /// table.
    #[arg(long, value_name = "FILE", requires = "from")]
    plot_success: Option<PathBuf>,
    /// With --plot-success: a results.csv to read (repeatable; cells in the order read).
    #[arg(long, value_name = "CSV", requires = "plot_success")]
    from: Vec<PathBuf>,
}

/// A parser of the names of `all`, which `--help` and errors list.
fn names<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    let find = move |s: String| all.iter().copied().find(|&v| name(v) == s);
    PossibleValuesParser::new(all.iter().map(|&v| name(v)))
        .map(move |s| find(s).expect("one of the possible values"))
}

/// `--model`'s parser: the stacks of the one table (with their summaries in `--help`), `all`
/// and `recommended`.
fn model_choices() -> impl TypedValueParser<Value = Vec<ModelChoice>> {
    let stacks = ModelKind::ALL
        .iter()
        .map(|m| PossibleValue::new(m.name()).help(m.summary()));
    let more = [
        PossibleValue::new("all").help("Every stack above that reads the protocol's rows"),
        PossibleValue::new("recommended")
            .help("Each task's recommended stack and recipe (reference and madsen)"),
    ];
    PossibleValuesParser::new(stacks.chain(more)).map(|s| match s.as_str() {
        "all" => vec![ModelChoice::All],
        "recommended" => vec![ModelChoice::Recommended],
        name => vec![ModelChoice::Stack(name.parse().expect("a possible value"))],
    })
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number greater than 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number of at least 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1, got 0".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let parsed = s.split_once(',').and_then(|(lo, hi)| {
        Some((
            lo.trim().parse::<f32>().ok()?,
            hi.trim().parse::<f32>().ok()?,
        ))
    });
    match parsed {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok((lo, hi)),
        _ => Err(format!("expected LO,HI with LO < HI, got '{s}'")),
    }
}

impl Cli {
    /// The tasks and models asked for, defaults filled in ([`burn_nalu_lab::selection`]).
    fn selection(&self) -> (Vec<Operation>, Vec<ModelChoice>) {
        let models: Vec<ModelChoice> = self.models.iter().flatten().copied().collect();
        burn_nalu_lab::selection(self.protocol, &self.tasks, &models)
    }

    /// The protocol's task settings the arguments override.
    fn task_options(&self) -> TaskOptions {
        TaskOptions {
            subset_ratio: self.subset_ratio,
            overlap_ratio: self.overlap_ratio,
            interpolation_range: self.interpolation_range,
            extrapolation_range: self.extrapolation_range,
            eval_rows: self.eval_rows,
            inputs: self.inputs,
            range: self.range,
            time: self.time,
            extrapolation_time: self.extrapolation_time,
            no_early_stop: self.no_early_stop,
        }
    }

    /// The model's recipe for `op` under `--protocol` ([`burn_nalu_lab::recipe`]), with what
    /// the command line overrides.
    fn config(&self, choice: ModelChoice, op: Operation) -> Result<TrainConfig, String> {
        let recipe = burn_nalu_lab::recipe(self.protocol, choice, op, self.inputs)
            .map_err(|e| e.to_string())?;
        let schedule = recipe.regularizer.unwrap_or(RegularizerSchedule {
            lambda: 0.0,
            start: 0,
            end: 0,
        });
        let regularizer = RegularizerSchedule {
            lambda: self.reg_lambda.unwrap_or(schedule.lambda),
            start: self.reg_start.unwrap_or(schedule.start),
            end: self.reg_end.unwrap_or(schedule.end),
        };
        let budget = match (self.epochs, self.steps) {
            (Some(e), _) => Budget::Epochs(e),
            (_, Some(s)) => Budget::Steps(s),
            _ => recipe.budget,
        };
        Ok(TrainConfig {
            optimizer: self.optimizer.unwrap_or(recipe.optimizer),
            lr: self.lr.unwrap_or(recipe.lr),
            budget,
            batch_size: self.batch_size.unwrap_or(recipe.batch_size),
            hidden: self.hidden,
            clip_norm: self.clip_norm.map(|c| c as f32),
            regularizer: (regularizer.lambda > 0.0).then_some(regularizer),
            eval_every: self.eval_every.or(recipe.eval_every),
            early_stop_patience: recipe.early_stop_patience.filter(|_| !self.no_early_stop),
            give_up_patience: self.give_up.or(recipe.give_up_patience),
            snap: self.snap || recipe.snap,
            polish: self.polish || recipe.polish,
            inits_per_seed: self.inits.unwrap_or(recipe.inits_per_seed),
            ..recipe
        })
    }

    /// [`Cli::config`] of a cell that [`Cli::check_combinations`] accepted.
    fn checked_config(&self, choice: ModelChoice, op: Operation) -> TrainConfig {
        self.config(choice, op)
            .expect("every cell's recipe is checked before any is planned")
    }

    /// Refuses arguments that contradict each other or the chosen models, naming both (what
    /// the settings they make are refused for, the library says: [`Cli::check_configs`]).
    fn check_combinations(&self) -> Result<(), String> {
        if self.epochs.is_some() && self.steps.is_some() {
            return Err("--epochs contradicts --steps: give one budget".into());
        }
        if self.resume && self.out.is_none() {
            return Err("--resume needs --out DIR, the run to continue".into());
        }
        if self.checkpoint_every.is_some() && self.out.is_none() {
            return Err("--checkpoint-every needs --out DIR, where the checkpoints go".into());
        }
        let (tasks, choices) = self.selection();
        let models = choices
            .iter()
            .flat_map(|&c| {
                tasks
                    .iter()
                    .map(move |&op| self.config(c, op).map(|c| c.model))
            })
            .collect::<Result<Vec<ModelKind>, String>>()?;
        let reg_flags = [
            ("--reg-lambda", self.reg_lambda.is_some()),
            ("--reg-start", self.reg_start.is_some()),
            ("--reg-end", self.reg_end.is_some()),
        ];
        let reg_flag = reg_flags.iter().find(|(_, given)| *given).map(|(f, _)| *f);
        if let (Some(flag), Some(model)) = (reg_flag, models.iter().find(|m| !m.has_regularizer()))
        {
            return Err(format!(
                "{flag} contradicts --model {model}, which has no regulariser"
            ));
        }
        if self.reg_lambda == Some(0.0)
            && let Some((flag, _)) = reg_flags[1..].iter().find(|(_, given)| *given)
        {
            return Err(format!(
                "{flag} contradicts --reg-lambda 0, which turns the regulariser off"
            ));
        }
        Ok(())
    }
}

/// One population to train: a model, a task and a range of seeds.
#[derive(Clone, Debug)]
struct Work {
    choice: ModelChoice,
    model: ModelKind,
    inits: usize,
    op: Operation,
    seeds: Vec<u64>,
}

impl Work {
    /// Whether `r` is one of this population's runs.
    fn holds(&self, r: &RunResult) -> bool {
        (r.model, r.task, r.inits) == (self.model, self.op, self.inits)
            && self.seeds.contains(&r.seed)
    }
}

/// The populations of the run, in report order: per model, per task, seeds in chunks.
fn plan(cli: &Cli) -> Vec<Work> {
    let (tasks, models) = cli.selection();
    let seeds: Vec<u64> = (cli.seed..cli.seed + cli.seeds as u64).collect();
    let chunk = cli.population.unwrap_or(cli.seeds);
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

impl Cli {
    /// Checks every cell's settings against the task before any training time is spent: the
    /// library refuses what it cannot train, and the message names the cell.
    fn check_configs(&self, task: &dyn Task) -> Result<(), String> {
        let (tasks, models) = self.selection();
        let protocol = task.protocol();
        for op in tasks {
            if !protocol.operations().contains(&op) {
                let ops: Vec<&str> = protocol.operations().iter().map(|o| o.name()).collect();
                return Err(format!(
                    "--task {op}: the {protocol} task has {} only",
                    ops.join(" and ")
                ));
            }
            let data = task.data(op, self.seed);
            for &choice in &models {
                let checked = self.checked_config(choice, op).validate_for(&data);
                checked.map_err(|e| format!("--model {} --task {op}: {e}", choice.name()))?;
            }
        }
        Ok(())
    }

    /// The settings that decide the results of a run in `--out DIR` (written to run.json): the
    /// task and every model's configuration for every task.
    fn settings(&self, task: &dyn Task) -> RunSettings {
        let (tasks, models) = self.selection();
        let cells = models
            .iter()
            .flat_map(|&c| tasks.iter().map(move |&op| (c, op)));
        RunSettings {
            protocol: task.settings(),
            configs: cells
                .map(|(c, op)| (format!("{}/{op}", c.name()), self.checked_config(c, op)))
                .collect(),
        }
    }
}

/// The results a resumed run keeps, after checking that DIR's settings agree with this run's.
/// A row cut short by a crash (of a version that wrote in place) is dropped and retrained.
fn resumed(dir: &Path, settings: &RunSettings) -> Result<Vec<RunResult>, String> {
    let refuse = |e: ExperimentError| format!("--resume: {}: {e}", dir.display());
    let manifest = dir.join("run.json");
    if !manifest.exists() {
        return Ok(Vec::new());
    }
    let before: RunSettings = report::read_json(&manifest).map_err(|e| format!("--resume: {e}"))?;
    settings.check_resume(&before).map_err(refuse)?;
    // The CSV, not the JSON: JSON has no NaN or infinity (serde_json writes them as null), and a
    // diverged run's losses can be either.
    let results = dir.join("results.csv");
    if !results.exists() {
        return Ok(Vec::new());
    }
    let (kept, dropped) = report::read_csv_rows(&results).map_err(|e| format!("--resume: {e}"))?;
    for row in &dropped {
        eprintln!(
            "warning: --resume: {}: dropped {row}; its run is trained again",
            results.display()
        );
    }
    Ok(kept)
}

/// Creates `dir` and proves a file can be written there, before any training time is spent.
fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // One line that names the argument and what it takes; clap's usage hint adds nothing.
            let rendered = err.render().to_string();
            let lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
            let useful: Vec<&str> = lines.filter(|l| !l.starts_with("For more")).collect();
            eprintln!("{}", useful.join(" "));
            return ExitCode::from(2);
        }
    };
    if let Some(figure) = &cli.plot_success {
        return match plot_success(figure, &cli.from) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let (task, kept) = match prepare(&cli) {
        Ok(prepared) => prepared,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    match run(&cli, task.as_ref(), kept) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--plot-success FILE --from CSV...`: the success rates of the runs in the CSVs, each cell
/// beside its published rate where there is one, and the same as a table on stdout.
fn plot_success(figure: &Path, csvs: &[PathBuf]) -> Result<(), ExperimentError> {
    let paths: Vec<&Path> = csvs.iter().map(PathBuf::as_path).collect();
    let runs = report::read_pooled(&paths)?;
    let mut summaries = report::summarize(&runs);
    summaries.sort_by_key(|s| Operation::ALL.iter().position(|&op| op == s.task));
    let bars: Vec<report::RateBar> = summaries
        .iter()
        .map(|s| report::RateBar {
            group: s.task.formula().to_string(),
            label: s.model.clone(),
            successes: s.successes,
            runs: s.runs,
            published: report::published(s, &runs).map(|p| (p.successes, p.seeds)),
        })
        .collect();
    let title = "Success rates: this crate (blue), published (grey)";
    report::plot_success_rates(figure, title, &bars)?;
    println!("{}", report::comparison_table(&runs));
    Ok(())
}

/// Everything that can be refused before training: the arguments, every cell's settings, the
/// SIMD level, the output directory and what a resumed run keeps.
fn prepare(cli: &Cli) -> Result<(Box<dyn Task>, Vec<RunResult>), String> {
    cli.check_combinations()?;
    let task = burn_nalu_lab::task(cli.protocol, &cli.task_options()).map_err(|e| e.to_string())?;
    cli.check_configs(task.as_ref())?;
    burn_nalu::simd::simd_level().map_err(|e| e.to_string())?;
    let Some(dir) = &cli.out else {
        return Ok((task, Vec::new()));
    };
    check_writable(dir).map_err(|e| format!("--out {}: cannot write there: {e}", dir.display()))?;
    let kept = match cli.resume {
        true => resumed(dir, &cli.settings(task.as_ref()))?,
        false => Vec::new(),
    };
    refuse_dropping(&kept, &plan(cli), dir)?;
    Ok((task, kept))
}

/// Refuses a resume that would lose runs: the results files are rewritten from this command's
/// populations, so a kept run that none of them holds (another model, task or seed) would drop
/// out of them.
fn refuse_dropping(kept: &[RunResult], work: &[Work], dir: &Path) -> Result<(), String> {
    let dropped: Vec<String> = (kept.iter())
        .filter(|r| !work.iter().any(|w| w.holds(r)))
        .map(|r| format!("{}/{} seed {}", r.model, r.task, r.seed))
        .collect();
    match dropped.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(format!(
            "--resume: {}: holds {} run(s) this command does not train ({first}{}), which its \
             results files would lose; name them too (run.json lists the directory's cells) or \
             use another --out",
            dir.display(),
            dropped.len(),
            if dropped.len() > 1 { ", …" } else { "" },
        )),
    }
}

/// A finished population, sent from a worker to the main thread.
type Finished = (usize, Work, Result<Vec<TrainedRun>, ExperimentError>);

fn run(cli: &Cli, task: &dyn Task, kept: Vec<RunResult>) -> Result<(), ExperimentError> {
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
            cli.population.unwrap_or(cli.seeds),
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
    if cli.seeds > 1 {
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
