//! The static arithmetic experiments: the NALU paper's static toy task (Trask et al. 2018,
//! Table 1, as the Keras reference ran it) and Madsen & Johansen 2020's.
//!
//! `cargo run --release --example static_toy -- --help` lists the options. A thin command line
//! over `burn_nalu_lab`: the seeds of each model and task train as one population,
//! `--jobs` populations at a time; results are written as each population finishes.

mod args;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn_nalu_lab::report::{self, RangeCriterion, RunSettings};
use burn_nalu_lab::{ExperimentError, MistrySpec, Operation, RunResult, Task};
use clap::Parser;

use args::Cli;
use run::{Work, plan, run};

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
    if let Some(results) = &cli.summaries {
        return match report::write_summaries(results) {
            Ok(files) => {
                println!(
                    "{} summaries in {}",
                    files.len(),
                    results.join("summaries").display()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let figure = (cli.plot_success.as_ref())
        .map(|f| (f, (|f, cli: &Cli| plot_success(f, &cli.from)) as Figure))
        .or_else(|| {
            (cli.plot_headline.as_ref())
                .map(|f| (f, (|f, cli: &Cli| plot_headline(f, &cli.from)) as Figure))
        })
        .or_else(|| cli.plot_ranges.as_ref().map(|f| (f, plot_ranges as Figure)));
    if let Some((figure, plot)) = figure {
        return match plot(figure, &cli) {
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

/// A figure drawn from results CSVs: `--plot-success`, `--plot-headline` or `--plot-ranges`.
type Figure = fn(&Path, &Cli) -> Result<(), ExperimentError>;

/// `--plot-headline FILE --from CSV...`: the headline figure of the runs in the CSVs, and its
/// table on stdout.
fn plot_headline(figure: &Path, csvs: &[PathBuf]) -> Result<(), ExperimentError> {
    let paths: Vec<&Path> = csvs.iter().map(PathBuf::as_path).collect();
    let cells = report::headline_cells(&report::read_table_runs(&paths)?);
    report::plot_headline(figure, report::HEADLINE_TITLE, &cells)?;
    println!("{}", report::headline_table(&cells));
    Ok(())
}

/// `--plot-success FILE --from CSV...`: the success rates of the runs in the CSVs, each cell
/// beside its published rate where there is one, and the same as a table on stdout.
fn plot_success(figure: &Path, csvs: &[PathBuf]) -> Result<(), ExperimentError> {
    let paths: Vec<&Path> = csvs.iter().map(PathBuf::as_path).collect();
    let runs = report::read_table_runs(&paths)?;
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

/// `--plot-ranges FILE --from CSV... [--primer-threshold] [--inputs N]`: the success rates per
/// range of the single-module task, one CSV per range in range order; prints the totals by
/// both criteria.
fn plot_ranges(figure: &Path, cli: &Cli) -> Result<(), ExperimentError> {
    let per_range = (cli.from.iter())
        .map(|p| report::read_csv(p))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = cli.inputs.unwrap_or(MistrySpec::default().inputs);
    let criterion = match cli.primer_threshold {
        true => RangeCriterion::Primer { inputs },
        false => RangeCriterion::Recorded,
    };
    let series = report::range_series(&per_range, criterion);
    report::plot_range_rates(figure, criterion.title(), &series)?;
    print!("{}", report::range_totals(&per_range, inputs));
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
