//! The long experiments committed under `results/` (each `*.csv` holds every run of one
//! command, which README names) and the README's tables agree: every row of the summary that
//! `static_toy` prints for a results file appears verbatim in README.

use std::path::{Path, PathBuf};

use burn_nalu_lab::report::{comparison_table, read_csv, read_pooled, summarize, summary_table};
use burn_nalu_lab::{ModelKind, Operation, RunResult};

#[test]
fn readme_summaries_match_the_committed_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(root.join("results")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let runs = read_csv(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!runs.is_empty(), "{}: no runs", path.display());
        let table = summary_table(&summarize(&runs));
        for row in table.lines().skip(2) {
            assert!(
                readme.contains(row),
                "README lacks this row of {}:\n{row}",
                path.display()
            );
        }
        files += 1;
    }
    assert!(files > 0, "results/ holds no csv");
}

/// Madsen & Johansen's whole static table in README (issue 20) is the comparison table of every
/// committed file of their protocol's table runs (`madsen-table-*.csv` and
/// `madsen-whole-*.csv`), pooled: a seed in two files is the same run, counted once.
#[test]
fn readme_whole_table_matches_the_committed_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("results")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let table_run = name.starts_with("madsen-table-") || name.starts_with("madsen-whole-");
        if table_run && name.ends_with(".csv") {
            files.push(path);
        }
    }
    // In name order, as the shell's glob lists them for `--plot-success`: a run held by two
    // files counts from the first, with that copy's wall clock.
    files.sort();
    // A cell trained again to 100 seeds repeats its first 20: pooled, they count once.
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let runs = read_pooled(&paths).unwrap_or_else(|e| panic!("{e}"));
    assert!(!runs.is_empty(), "no table runs in results/");
    for row in comparison_table(&runs).lines().skip(2) {
        assert!(
            readme.contains(row),
            "README lacks this row of the whole table:\n{row}"
        );
    }
}

/// The runs of the results file `path` that `keep` accepts, each as its `Debug` text once
/// `blank` has cleared the fields a rerun may change (its timings, how it stopped): two files
/// of the same runs compare equal to the bit in every other field.
fn runs_as_text(
    path: &Path,
    keep: impl Fn(&RunResult) -> bool,
    blank: impl Fn(&mut RunResult),
) -> Vec<String> {
    let runs = read_csv(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (runs.into_iter().filter(|r| keep(r)))
        .map(|mut r| {
            blank(&mut r);
            format!("{r:?}")
        })
        .collect()
}

/// Issue 18's proof was rerun on 2 December for its wall time (README, "Madsen & Johansen's
/// protocol"), and README says every run of it is the same to the bit as in the committed
/// files: every field of every run but the two timings.
#[test]
fn the_rerun_proof_trained_the_committed_runs_to_the_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    for (rerun, committed) in [
        (
            "madsen-proof-2026-12-02-nau-nmu",
            "madsen-proof-nau-nmu.csv",
        ),
        ("madsen-proof-2026-12-02-nau", "madsen-proof-nau.csv"),
    ] {
        let read = |path: &Path| {
            runs_as_text(
                path,
                |_| true,
                |r| {
                    (r.wall_seconds, r.steps_per_second) = (0.0, 0.0);
                },
            )
        };
        let again = read(&root.join("runs").join(rerun).join("results.csv"));
        assert_eq!(again.len(), 200, "{rerun}");
        assert_eq!(again, read(&root.join(committed)), "{rerun}");
    }
}

/// NAU → RealNPU on `−` trained again over the whole 5,000,000 steps with neither stopping rule
/// (README, "The whole table"), and README says the rule that ended its 20 runs at 2.0e6 to
/// 2.2e6 steps cost it nothing: no run found a lower validation MSE after, so every field of
/// every run is the same to the bit but how and when it stopped and the timings.
#[test]
fn realnpu_sub_without_stopping_rules_keeps_the_same_best_weights() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let read = |path: &Path, stopped: bool| {
        let cell = |r: &RunResult| r.model == ModelKind::RealNpu && r.task == Operation::Sub;
        runs_as_text(path, cell, |r| {
            assert_eq!(r.stopped_at_step.is_some(), stopped, "{}", path.display());
            (r.wall_seconds, r.steps_per_second) = (0.0, 0.0);
            (r.steps, r.stopped_at_step, r.gave_up) = (0, None, false);
        })
    };
    let no_stop = read(
        &root.join("runs/madsen-whole-realnpu-sub-no-stop/results.csv"),
        false,
    );
    assert_eq!(no_stop.len(), 20);
    assert_eq!(no_stop, read(&root.join("madsen-whole-others.csv"), true));
}
