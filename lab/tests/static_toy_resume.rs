//! The static_toy example's `--resume`: what a run continues from (its results files and its
//! checkpoints), and what it refuses.

mod cli;

use std::path::{Path, PathBuf};

use cli::{results_json, run, run_ok};

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
