//! The static_toy example's command line: argument errors and the files `--out` writes.
//!
//! `cargo test` builds the examples next to the test binaries; these tests run that build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> PathBuf {
    // target/<profile>/deps/static_toy_cli-<hash> → target/<profile>/examples/static_toy
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("static_toy{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test`",
        path.display()
    );
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(example()).args(args).output().unwrap()
}

/// [`run`], which must succeed (else its stderr is the failure message).
fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The runs of `DIR/results.json`, one object each.
fn results_json(dir: &Path) -> Vec<serde_json::Value> {
    let json = std::fs::read(dir.join("results.json")).unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// Exit code 2 and exactly one line on stderr containing `expected`.
fn assert_argument_error(args: &[&str], expected: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

#[test]
fn unknown_task_is_refused() {
    assert_argument_error(
        &["--task", "pow"],
        "error: invalid value 'pow' for '--task <NAME>' \
         [possible values: add, sub, mul, div, square, sqrt]",
    );
}

#[test]
fn non_positive_learning_rate_is_refused() {
    assert_argument_error(
        &["--lr", "0"],
        "'--lr <LR>': must be a finite number greater than 0, got 0",
    );
    assert_argument_error(
        &["--lr=-0.5"],
        "'--lr <LR>': must be a finite number greater than 0, got -0.5",
    );
}

#[test]
fn zero_epochs_are_refused() {
    assert_argument_error(
        &["--epochs", "0"],
        "'--epochs <EPOCHS>': must be at least 1, got 0",
    );
    assert_argument_error(
        &["--give-up", "0"],
        "'--give-up <N>': must be at least 1, got 0",
    );
}

#[test]
fn madsen_options_need_the_madsen_protocol_and_valid_values() {
    assert_argument_error(
        &["--subset-ratio", "0.1"],
        "error: --subset-ratio needs --protocol madsen",
    );
    assert_argument_error(
        &["--protocol", "madsen", "--overlap-ratio", "2"],
        "error: --protocol madsen: MadsenSpec.overlap_ratio must be in [0, 1], got 2",
    );
    assert_argument_error(
        &["--protocol", "madsen", "--extrapolation-range", "6,2"],
        "'--extrapolation-range <LO,HI>': expected LO,HI with LO < HI, got '6,2'",
    );
    assert_argument_error(
        &["--no-early-stop"],
        "error: --no-early-stop needs --protocol madsen",
    );
}

/// The sequential task has running sums and products only, reads sequences with a target at
/// every step, and refuses products whose targets leave f32, naming the step.
#[test]
fn sequential_protocol_refuses_what_it_cannot_measure() {
    let seq = ["--protocol", "sequential"];
    assert_argument_error(
        &[&seq[..], &["--task", "div"]].concat(),
        "--task div: the sequential task has add and mul only",
    );
    assert_argument_error(
        &[&seq[..], &["--model", "nalu"]].concat(),
        "--model nalu --task add: TrainConfig.model nalu reads whole rows",
    );
    assert_argument_error(
        &[&seq[..], &["--task", "mul", "--extrapolation-time", "1000"]].concat(),
        "TaskData.extrapolation has targets beyond f32 (±3.4e38) from output ",
    );
    assert_argument_error(
        &["--time", "5"],
        "--time needs --protocol recurrent or sequential",
    );
}

#[test]
fn contradictory_budgets_and_a_resume_without_a_directory_are_refused() {
    assert_argument_error(
        &["--epochs", "2", "--steps", "10"],
        "error: --epochs contradicts --steps: give one budget",
    );
    // The library refuses an epoch budget for a task without fixed rows, naming the setting.
    assert_argument_error(
        &["--protocol", "madsen", "--epochs", "2"],
        "error: --model nalu --task add: TrainConfig.budget is in epochs, but the madsen task \
         draws a fresh batch every step: give it in steps",
    );
    assert_argument_error(
        &["--resume"],
        "error: --resume needs --out DIR, the run to continue",
    );
    assert_argument_error(
        &["--checkpoint-every", "5"],
        "error: --checkpoint-every needs --out DIR, where the checkpoints go",
    );
}

/// Madsen & Johansen's protocol: fresh batches, their recipe, the success rate's confidence
/// interval, and a summary per model and task under `--out`.
#[test]
fn madsen_protocol_reports_confidence_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = run_ok(&[
        "--protocol",
        "madsen",
        "--model",
        "nau",
        "--task",
        "add",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--eval-rows",
        "50",
        "--seeds",
        "2",
        "--quiet",
        "--out",
        out_dir,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| Success | 95% CI |"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let s = &summary[0];
    assert_eq!(
        (s["model"].as_str(), s["task"].as_str()),
        (Some("nau"), Some("add"))
    );
    assert_eq!(s["runs"], 2);
    let ci = s["success_rate_ci"].as_array().unwrap();
    let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    assert!(0.0 <= lo && lo < hi && hi <= 1.0, "{ci:?}");
    let results = results_json(dir.path());
    let r = &results[0];
    assert_eq!(
        (r["protocol"].as_str(), r["steps"].as_u64()),
        (Some("madsen"), Some(20))
    );
    assert_eq!(
        (r["optimizer"].as_str(), r["batch_size"].as_u64()),
        (Some("adam"), Some(128))
    );
    assert_eq!(
        r["population"], 2,
        "the two seeds trained as one population"
    );
}

#[test]
fn unknown_model_is_refused() {
    // The stacks of the one table, then the two choices beyond them.
    assert_argument_error(
        &["--model", "mlp"],
        "error: invalid value 'mlp' for '--model <NAME>' [possible values: nalu, nac, nac-mul, ",
    );
    assert_argument_error(&["--model", "mlp"], ", all, recommended]");
}

#[test]
fn negative_regularizer_weight_is_refused() {
    assert_argument_error(
        &["--reg-lambda=-1"],
        "'--reg-lambda <F>': must be a finite number of at least 0, got -1",
    );
}

/// Flags that contradict each other are refused naming both; settings the library refuses
/// (a ramp that ends before it starts, with the recipe's other end) name the cell and the field.
#[test]
fn contradictory_regularizer_arguments_are_refused() {
    assert_argument_error(
        &["--model", "nau-nmu", "--reg-start", "10", "--reg-end", "5"],
        "error: --model nau-nmu --task add: TrainConfig.regularizer.end must not come before \
         start (10), got 5",
    );
    assert_argument_error(
        &["--model", "nau", "--reg-end", "100"],
        "error: --model nau --task add: TrainConfig.regularizer.end must not come before start \
         (4000), got 100",
    );
    assert_argument_error(
        &["--model", "nau", "--reg-start", "9000"],
        "error: --model nau --task add: TrainConfig.regularizer.end must not come before start \
         (9000), got 8000",
    );
    assert_argument_error(
        &["--model", "nau-nmu", "--reg-lambda", "0", "--reg-end", "50"],
        "error: --reg-end contradicts --reg-lambda 0, which turns the regulariser off",
    );
    assert_argument_error(
        &["--reg-lambda", "0.1"],
        "error: --reg-lambda contradicts --model nalu, which has no regulariser",
    );
    assert_argument_error(
        &["--model", "all", "--reg-start", "5"],
        "error: --reg-start contradicts --model nalu, which has no regulariser",
    );
}

#[test]
fn an_unknown_simd_level_is_refused() {
    let out = Command::new(example())
        .args(["--task", "add", "--epochs", "1"])
        .env("BURN_NALU_SIMD", "mmx")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: BURN_NALU_SIMD must be one of scalar, avx2 or avx512, got 'mmx'"
    );
}

#[test]
fn unknown_optimizer_is_refused() {
    assert_argument_error(
        &["--optimizer", "sgd"],
        "error: invalid value 'sgd' for '--optimizer <NAME>' [possible values: adam, rmsprop]",
    );
}

#[test]
fn unwritable_out_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    // A directory cannot be created below a regular file, whoever runs the test.
    let out = file.join("results");
    assert_argument_error(&["--out", out.to_str().unwrap()], "--out");
}

#[test]
fn several_models_print_a_success_matrix() {
    let out = run_ok(&[
        "--model", "nau-nmu", "--model", "realnpu", "--task", "add", "--epochs", "1", "--seeds",
        "2", "--jobs", "2", "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| Operation | nau-nmu | realnpu |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| a + b | 0/2 (0) | 0/2 (0) |"),
        "one epoch solves nothing: {stdout}"
    );
}

/// The fields of every run, in JSON and CSV alike.
const FIELDS: [&str; 39] = [
    "model",
    "task",
    "protocol",
    "seed",
    "optimizer",
    "lr",
    "batch_size",
    "hidden",
    "clip_norm",
    "steps",
    "best_step",
    "train_mse",
    "valid_mse",
    "extrapolation_mse",
    "random_init_extrapolation_mse",
    "normalized_extrapolation_error",
    "success_threshold",
    "success",
    "solved_at_step",
    "formula",
    "formula_error",
    "sparsity_error",
    "formula_mse_vs_network",
    "formula_mse_vs_targets",
    "diverged_step",
    "diverged_loss",
    "stopped_at_step",
    "gave_up",
    "snap_kept",
    "snapped_valid_mse",
    "snapped_extrapolation_mse",
    "snapped_success",
    "polish_kept",
    "restarts",
    "inits",
    "init_seed",
    "population",
    "wall_seconds",
    "steps_per_second",
];

#[test]
fn out_dir_receives_results_weights_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(&[
        "--model",
        "nalu",
        "--task",
        "add",
        "--task",
        "div",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--quiet",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| Operation | Seed | Train Loss | Extrapolated Test Loss |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| Operation | Success |"),
        "per-task summary for --seeds: {stdout}"
    );

    let runs = results_json(dir.path());
    assert_eq!(runs.len(), 4, "one object per task and seed");
    for run in &runs {
        let obj = run.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        let mut expected = FIELDS.to_vec();
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(
            obj["steps"],
            2 * 16,
            "1000 rows in batches of 64: 16 steps per epoch"
        );
    }
    assert_eq!(runs[0]["model"], "nalu");
    assert_eq!(runs[0]["task"], "add");
    assert_eq!(runs[0]["protocol"], "reference");
    assert_eq!(runs[3]["task"], "div");
    assert_eq!(runs[3]["seed"], 1);

    let mut csv = csv::Reader::from_path(dir.path().join("results.csv")).unwrap();
    assert_eq!(csv.headers().unwrap().iter().collect::<Vec<_>>(), FIELDS);
    assert_eq!(csv.records().count(), 4);
    for stem in [
        "nalu-add-seed0",
        "nalu-add-seed1",
        "nalu-div-seed0",
        "nalu-div-seed1",
    ] {
        assert!(dir.path().join(format!("{stem}.bpk")).is_file(), "{stem}");
        let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{stem}");
    }
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(settings["protocol"]["name"], "reference");
}

/// Results are written as each population finishes; `--resume` trains only what is missing and
/// refuses a directory made with other settings.
#[test]
fn resume_continues_a_run_and_refuses_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let base = [
        "--model",
        "nac",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--population",
        "1",
    ];
    let first = run(&[&base[..], &["--task", "add", "--quiet", "--out", out_dir]].concat());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let read = || -> Vec<serde_json::Value> { results_json(dir.path()) };
    let before = read();
    assert_eq!(before.len(), 2);
    // Now add and sub: the two add runs are kept, not retrained; sub's two are trained.
    let args = [
        &base[..],
        &[
            "--task", "add", "--task", "sub", "--resume", "--out", out_dir,
        ],
    ];
    let second = run(&args.concat());
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("2 population(s) of up to 1 seed(s) to train (2 kept)"),
        "{stdout}"
    );
    let after = read();
    assert_eq!(after.len(), 4);
    assert_eq!(after[..2], before[..], "kept runs are not retrained");
    assert_eq!(
        (after[2]["task"].as_str(), after[3]["task"].as_str()),
        (Some("sub"), Some("sub"))
    );
    // Another learning rate is another run.
    let other = [
        &base[..],
        &["--task", "add", "--lr", "0.5", "--resume", "--out", out_dir],
    ];
    let refused = run(&other.concat());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("trained nac/add with other settings"),
        "{stderr}"
    );
    // A command that trains less than the directory holds would rewrite its results without
    // the rest: refused, and nothing is lost.
    let one_seed = [&base[..4], &["--seeds", "1"], &base[6..]].concat();
    for (less, named) in [
        (
            [&base[..], &["--task", "add"]].concat(),
            "2 run(s) this command does not train (nac/sub seed 0, …)",
        ),
        (
            [&one_seed[..], &["--task", "add", "--task", "sub"]].concat(),
            "2 run(s) this command does not train (nac/add seed 1, …)",
        ),
    ] {
        let refused = run(&[&less[..], &["--resume", "--out", out_dir]].concat());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert_eq!(read(), after, "the results files are untouched");
    }
}

/// The main job with no `--model`: NALU and the recommended stack per task (with its
/// initialisations per seed), closed by the per-operation summary.
#[test]
fn default_run_trains_nalu_and_the_recommended_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(&[
        "--task",
        "add",
        "--task",
        "div",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| Operation | Learned | Best model |"),
        "{stdout}"
    );
    let runs = results_json(dir.path());
    let cells: Vec<(&str, &str, u64)> = runs
        .iter()
        .map(|r| {
            let (model, task) = (r["model"].as_str().unwrap(), r["task"].as_str().unwrap());
            (model, task, r["inits"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("nalu", "add", 1),
            ("nalu", "div", 1),
            ("nac", "add", 1),
            ("realnpu", "div", 8)
        ]
    );
    assert_eq!(
        runs[3]["seed"], 0,
        "the seed of the data, whichever initialisation won"
    );
}

/// `--model recommended` on Madsen & Johansen's task takes that task's recommendations
/// (`TrainConfig::madsen_recommended`): NAU → NAU for `+`, the naive NPU from 8
/// initialisations, polished and snapped, for `÷`. Other protocols have none.
#[test]
fn madsen_recommended_stacks_follow_that_task() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&[
        "--protocol",
        "madsen",
        "--model",
        "recommended",
        "--task",
        "add",
        "--task",
        "div",
        "--steps",
        "200",
        "--eval-rows",
        "100",
        "--quiet",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let runs = results_json(dir.path());
    let cells: Vec<(&str, &str, u64, bool)> = runs
        .iter()
        .map(|r| {
            let (model, task) = (r["model"].as_str().unwrap(), r["task"].as_str().unwrap());
            let snapped = r["snap_kept"].is_boolean() && r["polish_kept"].is_boolean();
            (model, task, r["inits"].as_u64().unwrap(), snapped)
        })
        .collect();
    assert_eq!(
        cells,
        [("nau", "add", 1, false), ("naive-npu", "div", 8, true)]
    );
    assert_argument_error(
        &["--protocol", "mistry", "--model", "recommended"],
        "--model recommended needs --protocol reference or madsen",
    );
}

/// `--jobs 2` trains populations side by side (each job on its own thread pool) and reports what
/// one job at a time does, run for run. Exactly: the kernels split their work across threads by
/// rows and never split a sum, so the thread count does not change a bit.
#[test]
fn jobs_run_side_by_side_with_the_same_results() {
    let results = |jobs: &str| {
        let dir = tempfile::tempdir().unwrap();
        run_ok(&[
            "--model",
            "nalu",
            "--model",
            "nac",
            "--task",
            "add",
            "--task",
            "sub",
            "--epochs",
            "3",
            "--seeds",
            "2",
            "--jobs",
            jobs,
            "--quiet",
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        let runs = results_json(dir.path());
        let fields = [
            "model",
            "task",
            "seed",
            "train_mse",
            "valid_mse",
            "extrapolation_mse",
        ];
        let pick = |r: &serde_json::Value| fields.map(|f| r[f].clone());
        runs.iter().map(pick).collect::<Vec<_>>()
    };
    let one = results("1");
    assert_eq!(one.len(), 8);
    assert_eq!(results("2"), one);
}

/// A results file cut mid-row (what a run killed while an older version rewrote it in place
/// left behind): `--resume` keeps every complete row, says which it dropped, and trains only
/// the run that row held. The files written now are replaced whole, never left torn or beside a
/// temporary file.
#[test]
fn resume_after_a_torn_results_file_retrains_only_the_lost_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let args = [
        "--model", "nac", "--task", "add", "--epochs", "2", "--seeds", "3", "--quiet", "--out",
        out_dir,
    ];
    let first = run(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = results_json(dir.path());
    let csv = dir.path().join("results.csv");
    let whole = std::fs::read(&csv).unwrap();
    let last_row = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&csv, &whole[..last_row + 30]).unwrap();

    let second = run(&[&args[..args.len() - 3], &["--resume", "--out", out_dir]].concat());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "results.csv: dropped line 4: cut short (no end of line); its run is trained again"
        ),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("1 population(s) of up to 3 seed(s) to train"),
        "{stdout}"
    );
    let after = results_json(dir.path());
    assert_eq!(
        after[..2],
        before[..2],
        "the complete rows are kept as they were"
    );
    assert_eq!(
        (after[2]["seed"].as_u64(), after[2]["population"].as_u64()),
        (Some(2), Some(1))
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn success_figure_reads_committed_results_and_needs_them() {
    assert_argument_error(&["--plot-success", "x.svg"], "--from");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("results/madsen-table-nau-100-seeds.csv");
    let dir = std::env::temp_dir().join(format!("burn-nalu-figure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("rates.svg");
    let out = run_ok(&[
        "--plot-success",
        svg.to_str().unwrap(),
        "--from",
        csv.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    // NAU on add and sub, a panel each, beside Madsen & Johansen's rate: four points, two in
    // the legend.
    let label = |t: &str| text.contains(&format!("\n{t}\n</text>"));
    assert!(label("a + b") && label("a - b") && label("nau"), "{text}");
    assert_eq!(text.matches("<circle").count(), 4 + 2);
    // The same cells as a table on stdout: published, ours, all read back, none given up.
    let table = String::from_utf8_lossy(&out.stdout);
    let row = "| nau | 100/100 100% [96%, 100%] | 100/100 100% [96%, 100%] | 100/100 |";
    assert_eq!(table.matches(row).count(), 2, "{table}");
    assert_eq!(table.matches("| 0/100 |").count(), 2, "{table}");
    // Their wall clock: the two populations of 100 ran 694.0 and 436.6 s.
    let total = "Wall clock of these 200 runs: 1,131 s (0.3 hours).";
    assert!(table.contains(total), "{table}");
    let missing = run(&[
        "--plot-success",
        svg.to_str().unwrap(),
        "--from",
        "no/such.csv",
    ]);
    assert!(!missing.status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The runs of `DIR/results.json` without their timings.
fn results_untimed(dir: &Path) -> Vec<serde_json::Value> {
    let mut runs = results_json(dir);
    for run in &mut runs {
        let run = run.as_object_mut().unwrap();
        run.remove("wall_seconds");
        run.remove("steps_per_second");
    }
    runs
}

/// `DIR`'s checkpoint files.
fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let files = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    files
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"))
        .collect()
}

/// A population cut off mid-run continues from its checkpoint with `--resume` to the results
/// it would have had in one go; checkpointing at every evaluation changes nothing, and the
/// file goes once the results are written; a damaged checkpoint is refused, naming the file.
#[test]
fn resume_continues_a_population_from_its_checkpoint() {
    use burn::tensor::Device;
    use burn_nalu_lab::{Budget, MadsenTask, ModelKind, Operation, Task, TrainConfig, Trainer};
    let base = [
        "--protocol",
        "madsen",
        "--model",
        "nau-nmu",
        "--task",
        "mul",
        "--seeds",
        "2",
        "--steps",
        "300",
        "--eval-every",
        "50",
        "--quiet",
    ];
    let (plain, every, cut) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let out = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_owned();
    run_ok(&[&base[..], &["--out", &out(&plain)]].concat());
    run_ok(
        &[
            &base[..],
            &["--out", &out(&every), "--checkpoint-every", "0"],
        ]
        .concat(),
    );
    assert_eq!(results_untimed(every.path()), results_untimed(plain.path()));
    assert_eq!(checkpoints(every.path()), Vec::<PathBuf>::new());

    // What a process cut off after step 100 leaves: the state of the same population (the
    // command's settings: Madsen's NAU → NMU recipe with this budget) at its last checkpoint.
    let task = MadsenTask::default();
    let data = (0..2).map(|seed| task.data(Operation::Mul, seed)).collect();
    let config = TrainConfig {
        budget: Budget::Steps(300),
        eval_every: Some(50),
        ..TrainConfig::madsen(ModelKind::NauNmu)
    };
    let mut trainer: Trainer = Trainer::new(data, &config, &Device::default()).unwrap();
    while trainer.step().is_none_or(|p| p.step < 100) {}
    let file = cut.path().join("nau-nmu-mul-seeds0-1.checkpoint");
    std::fs::write(&file, trainer.checkpoint().unwrap()).unwrap();
    let loud = &base[..base.len() - 1];
    let resumed = run_ok(&[loud, &["--out", &out(&cut), "--resume"]].concat());
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    let said = format!(
        "seeds 0..=1: continuing from its checkpoint {}",
        file.display()
    );
    assert!(stderr.contains(&said), "{stderr}");
    assert_eq!(results_untimed(cut.path()), results_untimed(plain.path()));
    assert!(
        !file.exists(),
        "the checkpoint goes once the results are written"
    );

    let damaged = tempfile::tempdir().unwrap();
    let file = damaged.path().join("nau-nmu-mul-seeds0-1.checkpoint");
    std::fs::write(&file, b"BNALUCK1 but nothing else").unwrap();
    let refused = run(&[&base[..], &["--out", &out(&damaged), "--resume"]].concat());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(file.to_str().unwrap()) && stderr.contains("checksum"),
        "{stderr}"
    );
    // Without --resume, a stale checkpoint is not read: the population starts afresh.
    run_ok(&[&base[..], &["--out", &out(&damaged)]].concat());
    assert_eq!(
        results_untimed(damaged.path()),
        results_untimed(plain.path())
    );
}
