//! The static_toy example's command line: arguments it refuses, with the one line that says
//! why, and `--plot-success`, which trains nothing.

mod cli;

use std::path::Path;
use std::process::Command;

use cli::{assert_argument_error, example, example_named, run, run_ok};

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
    assert_argument_error(
        &["--early-stop-rule", "plateau"],
        "error: --early-stop-rule needs --protocol madsen",
    );
    assert_argument_error(
        &["--protocol", "madsen", "--early-stop-rule", "never"],
        "'--early-stop-rule <RULE>'",
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
fn contradictory_budgets_seeds_and_a_resume_without_a_directory_are_refused() {
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
    assert_argument_error(
        &["--seed-list", "3,1,3"],
        "error: --seed-list names seed 3 more than once",
    );
    assert_argument_error(
        &["--seed-list", "3", "--seeds", "2"],
        "'--seed-list <LIST>...' cannot be used with '--seeds <K>'",
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

/// The `fit_csv` example on a file it is given: `y = a·b` beside a distractor column `c`. The
/// NAU → NMU recipe reads it back as the product of `a` and `b` in the file's names, exact to
/// rounding on the held-out rows. Outputs are below 9; a row errs by at most 9 · 1.2e-7 for the
/// network's two f32 roundings, as much again for `a` and `b` read into f32, 5e-7 for `y`'s six
/// decimals and 9 · 6e-8 for `y` read into f32: 3.2e-6, an MSE of at most 1.0e-11 (typically
/// far less, the errors being of both signs); a look-alike or a saddle errs by 1e-3 and more.
/// A cell that is not a number is refused with its line and column.
#[test]
fn fit_csv_reads_a_product_back_in_the_files_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.csv");
    let mut text = String::from("a,b,c,y\n");
    let mut state = 7u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        1.0 + 2.0 * (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..400 {
        let (a, b, c) = (uniform(), uniform(), uniform());
        let (a, b) = (format!("{a:.6}"), format!("{b:.6}"));
        let y = a.parse::<f64>().unwrap() * b.parse::<f64>().unwrap();
        text += &format!("{a},{b},{c:.6},{y:.6}\n");
    }
    std::fs::write(&path, &text).unwrap();
    let fit_csv = |args: &[&str]| {
        Command::new(example_named("fit_csv"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = fit_csv(&["--data", path.to_str().unwrap(), "--target", "y"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nmu = stdout
        .lines()
        .skip_while(|l| !l.starts_with("NAU → NMU"))
        .take(2)
        .collect::<Vec<_>>();
    assert!(
        ["y = a·b", "y = b·a"].iter().any(|f| nmu[0].ends_with(f)),
        "{stdout}"
    );
    let held_out: f64 = nmu[1]
        .split("held-out MSE ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(held_out <= 1.0e-11, "{stdout}");
    std::fs::write(&path, "a,b,y\n1,2,2\n1,x,3\n").unwrap();
    let out = fit_csv(&["--data", path.to_str().unwrap(), "--target", "y"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3, column b: not a number: x"),
        "{stderr}"
    );
}
