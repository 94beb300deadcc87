//! The reports' unit tests: formats, statistics, tables, files and plots.

use super::plots::draw_success_rates;
use super::tables::format_seconds;
use super::*;
use crate::{ModelKind, Operation, OptimizerKind, Protocol, RunResult};

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
        snapped_success: None,
        polish_kept: None,
        plain_valid_mse: Some(0.25),
        plain_extrapolation_mse: Some(2e-3),
        plain_success: Some(false),
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

/// In the whole table a run rerun under the snapped rule (`madsen-snapped-*.csv`) stands in
/// the place of the older file's run of the same cell and seed; the older file's other seeds
/// and cells stay, and a rerun seed the older file lacks comes last.
#[test]
fn a_rerun_file_replaces_its_runs_in_the_whole_table() {
    let dir = std::env::temp_dir().join(format!("burn-nalu-rerun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (older, rerun) = (
        dir.join("madsen-whole-a.csv"),
        dir.join("madsen-snapped-a.csv"),
    );
    let cell = |task, seeds: std::ops::Range<u64>, success| -> Vec<RunResult> {
        (seeds.map(|seed| RunResult {
            task,
            seed,
            success,
            ..run()
        }))
        .collect()
    };
    let mut runs = cell(Operation::Mul, 0..3, false);
    runs.extend(cell(Operation::Square, 0..2, false));
    write_csv(&older, &runs).unwrap();
    let mut reruns = cell(Operation::Mul, 1..2, true);
    reruns.extend(cell(Operation::Mul, 7..8, true));
    write_csv(&rerun, &reruns).unwrap();
    let pooled = read_table_runs(&[&rerun, &older]).unwrap();
    let kept: Vec<(Operation, u64, bool)> =
        pooled.iter().map(|r| (r.task, r.seed, r.success)).collect();
    use Operation::{Mul, Square};
    assert_eq!(
        kept,
        [
            (Mul, 0, false),
            (Mul, 1, true),
            (Mul, 2, false),
            (Square, 0, false),
            (Square, 1, false),
            (Mul, 7, true)
        ]
    );
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
        bar("div", "naive-npu, best of 8, polished", 9, None),
    ];
    let mut svg = String::new();
    draw_success_rates(&mut svg, "rates", &bars).unwrap();
    // One panel per operation, each cell named by its model.
    let text = |t: &str| svg.contains(&format!("\n{t}\n</text>"));
    assert!(
        text("add") && text("div") && text("nau") && text("nmu"),
        "{svg}"
    );
    // A best of N under its stack's name and N; the rest of the label is the table's.
    assert!(text("naive-npu ×8"), "{svg}");
    // Four rates (two cells have no published one) and the legend's two markers.
    assert_eq!(svg.matches("<circle").count(), 4 + 2);
}

/// A results file of before 7 December 2026 gave the model before the snap as the run's and
/// the kept (snapped) model's outcome in `snapped_*` columns; read now, the run's metrics are
/// the kept model's and the earlier ones its `plain_*`.
#[test]
fn an_old_results_file_reads_as_the_kept_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.csv");
    let old = RunResult {
        valid_mse: 0.25,
        extrapolation_mse: 2e-3,
        normalized_extrapolation_error: 100.0 * 2e-3 / 3.0,
        success: false,
        plain_valid_mse: None,
        plain_extrapolation_mse: None,
        plain_success: None,
        ..run()
    };
    write_csv(&path, &[old]).unwrap();
    // The old columns, by name (a reader matches columns by their headers).
    let text = std::fs::read_to_string(&path).unwrap();
    let (header, row) = text.trim_end().split_once('\n').unwrap();
    let old = format!("{header},snapped_extrapolation_mse,snapped_success\n{row},1.5e-7,true\n");
    std::fs::write(&path, old).unwrap();
    let read = read_csv(&path).unwrap();
    let r = &read[0];
    assert_eq!((r.extrapolation_mse, r.success), (1.5e-7, true));
    assert_eq!(r.normalized_extrapolation_error, 100.0 * 1.5e-7 / 3.0);
    assert_eq!(r.valid_mse, 1e-9, "the snapped weights' validation MSE");
    assert_eq!(r.plain_valid_mse, Some(0.25));
    assert_eq!(r.plain_extrapolation_mse, Some(2e-3));
    assert_eq!(r.plain_success, Some(false));
    // Written again, it reads back the same (no old columns left).
    write_csv(&path, &read).unwrap();
    assert_eq!(read_csv(&path).unwrap(), read);
}
