//! The static_toy example's runs: what they print, and the files `--out` writes.

mod cli;

use cli::{assert_argument_error, results_json, run_ok};

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
const FIELDS: [&str; 40] = [
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
    "polish_kept",
    "plain_valid_mse",
    "plain_extrapolation_mse",
    "plain_success",
    "restarts",
    "inits",
    "init_seed",
    "population",
    "wall_seconds",
    "steps_per_second",
];

/// `--seed-list` trains exactly the seeds it names, as one population, and a seed trains the
/// same in it as alone, up to f32 rounding: the members of a population train apart, which is
/// what lets a rerun of some seeds of a cell stand beside the cell's other runs.
#[test]
fn a_seed_list_trains_those_seeds_as_they_train_alone() {
    let run = |seeds: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            &[
                "--protocol",
                "madsen",
                "--model",
                "nau",
                "--task",
                "sub",
                "--steps",
                "30",
                "--eval-every",
                "10",
                "--eval-rows",
                "50",
                "--quiet",
                "--out",
                dir.path().to_str().unwrap(),
            ][..],
            seeds,
        ]
        .concat();
        run_ok(&args);
        results_json(dir.path())
    };
    let listed = run(&["--seed-list", "5,2"]);
    let seeds: Vec<_> = listed.iter().map(|r| r["seed"].as_u64()).collect();
    assert_eq!(seeds, [Some(2), Some(5)], "the results in seed order");
    assert_eq!(listed[0]["population"], 2);
    let alone = run(&["--seed", "2"]);
    assert_eq!(listed[0]["best_step"], alone[0]["best_step"]);
    // The stacked population's matmul may sum a row's 100 products in another order than the
    // lone model's (the kernel blocks by the batch of members, and that differs by CPU and
    // SIMD level: to the bit on the Xeon and EPYC here, one ulp apart on CI's machine). Each
    // output is then within 100·ε ≈ 1.2e-5 of the other, relative, and each of the 30 Adam
    // steps adds at most that much to the weights' difference: 30 × 1.2e-5 = 3.6e-4, under
    // 1e-3. A member trained on another seed's weights or rows differs by ~20% (seeds 2 and
    // 5: train MSE 2.39 and 1.90).
    for field in ["train_mse", "valid_mse", "extrapolation_mse"] {
        let (a, b) = (listed[0][field].as_f64(), alone[0][field].as_f64());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            (a - b).abs() <= 1e-3 * b.abs(),
            "{field}: {a} in the population, {b} alone"
        );
    }
}

/// A recipe's gradient clipping reaches the run unless the command line names another: the
/// NMRU's recipe clips to norm 1 (its authors' `--clip-grad-norm 1`), which an earlier
/// command line dropped.
#[test]
fn the_recipes_gradient_clipping_is_kept() {
    let clip = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            &["--protocol", "mistry", "--model", "nmru", "--task", "div"][..],
            &[
                "--steps",
                "10",
                "--eval-every",
                "5",
                "--eval-rows",
                "50",
                "--quiet",
            ],
            &["--out", dir.path().to_str().unwrap()],
            extra,
        ]
        .concat();
        run_ok(&args);
        results_json(dir.path())[0]["clip_norm"].as_f64()
    };
    assert_eq!(clip(&[]), Some(1.0));
    assert_eq!(clip(&["--clip-norm", "0.5"]), Some(0.5));
}

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
            ("naive-npu", "div", 8)
        ]
    );
    assert_eq!(
        runs[3]["seed"], 0,
        "the seed of the data, whichever initialisation won"
    );
}

/// `--model recommended` on Madsen & Johansen's task takes that task's recommendations
/// (`TrainConfig::madsen_recommended`): NAU → NAU for `+`, the naive NPU from 16
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
        [("nau", "add", 1, false), ("naive-npu", "div", 16, true)]
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
