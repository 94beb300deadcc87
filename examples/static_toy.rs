//! The static toy experiments of Trask et al. 2018 (Table 1), as the Keras reference ran them.
//!
//! `cargo run --release --example static_toy -- --help` lists the options. A thin command line
//! over `burn_nalu::experiments`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use burn_nalu::RegularizerSchedule;
use burn_nalu::experiments::report::{self, format_metric};
use burn_nalu::experiments::{
    MadsenSpec, ModelKind, Operation, OptimizerKind, Protocol, ROWS, RunResult, StaticToyData,
    TrainConfig, train,
};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// Train two-layer stacks of arithmetic units on the static toy tasks and report train and
/// extrapolation loss.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Task to run: add, sub, mul, div, square or sqrt (repeatable; default: all six).
    #[arg(long = "task", value_name = "NAME")]
    tasks: Vec<Operation>,
    /// Model: nalu, nac, nau-nmu, inalu, npu, realnpu, or all (repeatable; default: nalu).
    #[arg(long = "model", value_name = "NAME", value_parser = parse_models)]
    models: Vec<Vec<ModelKind>>,
    /// Optimizer: adam or rmsprop, with Keras's defaults (default: the model's recipe).
    #[arg(long)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (default: the model's per-task recipe).
    #[arg(long, value_parser = positive_f64)]
    lr: Option<f64>,
    /// Epochs (default: the model's per-task recipe).
    #[arg(long, value_parser = at_least_one)]
    epochs: Option<usize>,
    /// Final weight of the sparsity regulariser (default: the model's recipe; 0 turns it off).
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    reg_lambda: Option<f64>,
    /// Step at which the regulariser starts to ramp up (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    reg_start: Option<usize>,
    /// Step at which the regulariser reaches its final weight (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    reg_end: Option<usize>,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    batch_size: usize,
    /// Width of the hidden NALU layer.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    hidden: usize,
    /// Seed of the data, the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run K seeds, from --seed on, and report per task the success rate and medians.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = at_least_one)]
    seeds: usize,
    /// Data and success criterion: reference (the Keras reference's task) or madsen (Madsen &
    /// Johansen 2020: overlapping subsets, U[1, 2] / U[2, 6], threshold from weights off by 1e-5).
    #[arg(long, default_value = "reference", value_parser = ["reference", "madsen"])]
    protocol: String,
    /// With --protocol madsen: size of each subset as a fraction of the inputs.
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    subset_ratio: Option<f64>,
    /// With --protocol madsen: fraction of a subset that a and b share.
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    overlap_ratio: Option<f64>,
    /// With --protocol madsen: training inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    interpolation_range: Option<(f32, f32)>,
    /// With --protocol madsen: extrapolation inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    extrapolation_range: Option<(f32, f32)>,
    /// Clip gradients to this global L2 norm (default: no clipping).
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    clip_norm: Option<f64>,
    /// Write results.json, results.csv, summary.json (per model and task), the best weights
    /// (MODEL-TASK-seedS.bpk) and loss plots (MODEL-TASK-seedS.svg) into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the results.
    #[arg(long)]
    quiet: bool,
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

fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let parsed = s.split_once(',').and_then(|(lo, hi)| {
        let (lo, hi) = (
            lo.trim().parse::<f32>().ok()?,
            hi.trim().parse::<f32>().ok()?,
        );
        Some((lo, hi))
    });
    match parsed {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok((lo, hi)),
        _ => Err(format!("expected LO,HI with LO < HI, got '{s}'")),
    }
}

/// The protocol the command line asks for, or a message naming the offending argument.
fn protocol(cli: &Cli) -> Result<Protocol, String> {
    let madsen_args = [
        ("--subset-ratio", cli.subset_ratio.is_some()),
        ("--overlap-ratio", cli.overlap_ratio.is_some()),
        ("--interpolation-range", cli.interpolation_range.is_some()),
        ("--extrapolation-range", cli.extrapolation_range.is_some()),
    ];
    if cli.protocol != "madsen" {
        return match madsen_args.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(format!("{name} needs --protocol madsen")),
            None => Ok(Protocol::Reference),
        };
    }
    let d = MadsenSpec::default();
    let spec = MadsenSpec {
        subset_ratio: cli.subset_ratio.unwrap_or(d.subset_ratio),
        overlap_ratio: cli.overlap_ratio.unwrap_or(d.overlap_ratio),
        interpolation: cli.interpolation_range.unwrap_or(d.interpolation),
        extrapolation: cli.extrapolation_range.unwrap_or(d.extrapolation),
    };
    spec.validate()
        .map_err(|e| format!("--protocol madsen: {e}"))?;
    Ok(Protocol::Madsen(spec))
}

fn parse_models(s: &str) -> Result<Vec<ModelKind>, String> {
    match s {
        "all" => Ok(ModelKind::ALL.to_vec()),
        _ => s.parse().map(|m| vec![m]),
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1, got 0".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
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
            // One line that names the argument; clap's usage hint adds nothing here.
            let rendered = err.render().to_string();
            eprintln!(
                "{}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    let protocol = match protocol(&cli).and_then(|p| check_combinations(&cli).map(|()| p)) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = burn_nalu::simd_level() {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    if let Some(dir) = &cli.out
        && let Err(err) = check_writable(dir)
    {
        eprintln!("error: --out {}: cannot write there: {err}", dir.display());
        return ExitCode::from(2);
    }
    match run(&cli, &protocol) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The tasks and models the command line asks for (defaults: all six tasks, NALU).
fn selection(cli: &Cli) -> (Vec<Operation>, Vec<ModelKind>) {
    let tasks = if cli.tasks.is_empty() {
        Operation::ALL.to_vec()
    } else {
        cli.tasks.clone()
    };
    let mut models: Vec<ModelKind> = cli.models.iter().flatten().copied().collect();
    if models.is_empty() {
        models.push(ModelKind::Nalu);
    }
    models.dedup();
    (tasks, models)
}

/// Refuses arguments that contradict each other or the chosen models' recipes, naming both.
fn check_combinations(cli: &Cli) -> Result<(), String> {
    let (tasks, models) = selection(cli);
    let reg_flags = [
        ("--reg-lambda", cli.reg_lambda.is_some()),
        ("--reg-start", cli.reg_start.is_some()),
        ("--reg-end", cli.reg_end.is_some()),
    ];
    let reg_flag = reg_flags.iter().find(|(_, given)| *given).map(|(f, _)| *f);
    if let (Some(flag), Some(model)) = (reg_flag, models.iter().find(|m| !m.has_regularizer())) {
        return Err(format!(
            "{flag} contradicts --model {model}, which has no regulariser"
        ));
    }
    if cli.reg_lambda == Some(0.0)
        && let Some((flag, _)) = reg_flags[1..].iter().find(|(_, given)| *given)
    {
        return Err(format!(
            "{flag} contradicts --reg-lambda 0, which turns the regulariser off"
        ));
    }
    for &model in &models {
        for &op in &tasks {
            let Some(r) = train_config(cli, model, op, 0).regularizer else {
                continue;
            };
            if r.end >= r.start {
                continue;
            }
            return Err(match (cli.reg_start, cli.reg_end) {
                (Some(s), Some(e)) => format!("--reg-end {e} is before --reg-start {s}"),
                (Some(s), None) => format!(
                    "--reg-start {s} is after --reg-end {} of the {model} recipe for {op} \
                     (give --reg-end too)",
                    r.end
                ),
                _ => format!(
                    "--reg-end {} is before --reg-start {} of the {model} recipe for {op} \
                     (give --reg-start too)",
                    r.end, r.start
                ),
            });
        }
    }
    Ok(())
}

fn run(cli: &Cli, protocol: &Protocol) -> Result<(), Box<dyn std::error::Error>> {
    let (tasks, models) = selection(cli);
    let device = Device::default();
    let show_progress = !cli.quiet && std::io::stdout().is_terminal();
    let started = Instant::now();
    if !cli.quiet {
        println!(
            "static toy ({} protocol): {} task(s) x {} seed(s) on {device:?}",
            report::protocol_name(protocol),
            tasks.len(),
            cli.seeds
        );
    }

    let mut results = Vec::new();
    let runs = models
        .iter()
        .flat_map(|&m| tasks.iter().map(move |&op| (m, op)));
    for (model, op) in runs {
        for seed in cli.seed..cli.seed + cli.seeds as u64 {
            let config = train_config(cli, model, op, seed);
            let data = StaticToyData::for_protocol(protocol, op, ROWS, seed);
            let bar = progress_bar(show_progress, op, &config);
            let run = train(&data, &config, &device, &mut |m| {
                bar.set_position(m.epoch as u64);
                bar.set_message(format!("valid MSE {}", format_metric(m.valid_mse)));
            });
            bar.finish_and_clear();
            if !cli.quiet {
                print_run(&run.result);
            }
            if let Some(dir) = &cli.out {
                let stem = format!("{model}-{op}-seed{seed}");
                run.model.save_file(dir.join(format!("{stem}.bpk")))?;
                let title = format!("{model}, {} (seed {seed}): MSE per epoch", op.formula());
                report::plot_history(
                    &dir.join(format!("{stem}.svg")),
                    &title,
                    &run.result.history,
                )?;
            }
            results.push(run.result);
        }
    }

    println!("\n{}", report::results_table(&results));
    let summaries = report::summarize(&results);
    if cli.seeds > 1 {
        println!("{}", report::summary_table(&summaries));
        if models.len() > 1 {
            println!(
                "Successes per task and model:\n\n{}",
                report::success_matrix(&summaries)
            );
        }
    }
    if let Some(dir) = &cli.out {
        report::write_json(&dir.join("results.json"), &results)?;
        report::write_csv(&dir.join("results.csv"), &results)?;
        report::write_json(&dir.join("summary.json"), &summaries)?;
    }
    if !cli.quiet {
        println!("total wall time {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The model's recipe for `op`, with whatever the command line overrides.
fn train_config(cli: &Cli, model: ModelKind, op: Operation, seed: u64) -> TrainConfig {
    let recipe = TrainConfig::recipe(model, op, seed);
    let schedule = recipe.regularizer.unwrap_or(RegularizerSchedule {
        lambda: 0.0,
        start: 0,
        end: 0,
    });
    let regularizer = RegularizerSchedule {
        lambda: cli.reg_lambda.unwrap_or(schedule.lambda),
        start: cli.reg_start.unwrap_or(schedule.start),
        end: cli.reg_end.unwrap_or(schedule.end),
    };
    TrainConfig {
        optimizer: cli.optimizer.unwrap_or(recipe.optimizer),
        lr: cli.lr.unwrap_or(recipe.lr),
        epochs: cli.epochs.unwrap_or(recipe.epochs),
        batch_size: cli.batch_size,
        hidden: cli.hidden,
        clip_norm: cli.clip_norm.map(|c| c as f32),
        regularizer: (regularizer.lambda > 0.0).then_some(regularizer),
        ..recipe
    }
}

fn progress_bar(show: bool, op: Operation, config: &TrainConfig) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(config.epochs as u64);
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} epochs {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{} {op} seed {}", config.model, config.seed));
    bar
}

fn print_run(r: &RunResult) {
    let mut line = format!(
        "{:>7} {:>6} seed {:<3} extrapolation MSE {:>10}  train MSE {:>10}  {:.1} s  {}",
        r.model.name(),
        r.task.name(),
        r.seed,
        format_metric(r.extrapolation_mse),
        format_metric(r.train_mse),
        r.wall_seconds,
        report::status(r),
    );
    if r.diverged.is_some() {
        line += &format!(" (kept the checkpoint of epoch {})", r.best_epoch);
    }
    println!("{line}");
    let b = &r.readback;
    match (&b.formula, &b.formula_error) {
        (Some(f), _) => {
            let vs_network = b.formula_mse_vs_network.unwrap_or(f64::NAN);
            // A formula that does not reproduce the network is only what its weights round to.
            let verb = if vs_network < r.success_threshold {
                "learned"
            } else {
                "rounds to"
            };
            println!(
                "{:>21} {verb} {f}  (sparsity error {}; formula vs network MSE {}, vs targets {})",
                "",
                format_metric(b.sparsity_error.unwrap_or(f64::NAN)),
                format_metric(vs_network),
                format_metric(b.formula_mse_vs_targets.unwrap_or(f64::NAN)),
            )
        }
        (None, Some(err)) => println!("{:>21} {err}", ""),
        (None, None) => {}
    }
}
