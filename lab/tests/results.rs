//! The long experiments committed under `results/` (each `*.csv` holds every run of one
//! command, which `results/README.md` names) and their summaries agree: `results/summaries/`
//! holds exactly what `static_toy --summaries results` generates from the CSVs, so the lab's
//! documents link to tables the results give.

use std::collections::HashSet;
use std::path::Path;

use burn_nalu_lab::report::{HEADLINE_RESULTS, HEADLINE_TITLE, headline_cells, plot_headline};
use burn_nalu_lab::report::{RangeCriterion, plot_range_rates, range_series, range_totals};
use burn_nalu_lab::report::{read_csv, read_pooled, summaries};
use burn_nalu_lab::{ModelKind, Operation, RunResult};

#[test]
fn committed_summaries_are_those_the_results_give() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let generated = summaries(&results).unwrap_or_else(|e| panic!("{e}"));
    assert!(generated.len() > 1, "results/ holds no csv");
    let dir = results.join("summaries");
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    committed.sort();
    let names: Vec<&String> = generated.iter().map(|(name, _)| name).collect();
    assert_eq!(
        committed.iter().collect::<Vec<_>>(),
        names,
        "results/summaries/ does not hold one file per results CSV: run \
         `cargo run --release --example static_toy -- --summaries lab/results`"
    );
    for (name, text) in &generated {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(
            &on_disk, text,
            "results/summaries/{name} differs from what its CSV gives: run \
             `cargo run --release --example static_toy -- --summaries lab/results`"
        );
    }
}

/// The README's headline figure is the one its results files give (`static_toy --plot-headline
/// results/headline.svg` with `--from` each of [`HEADLINE_RESULTS`]; the PNG beside it is
/// rendered from that SVG).
#[test]
fn the_headline_figure_is_the_one_the_results_give() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let paths: Vec<_> = HEADLINE_RESULTS.iter().map(|f| results.join(f)).collect();
    let runs = read_pooled(&paths.iter().map(|p| p.as_path()).collect::<Vec<_>>()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("headline.svg");
    plot_headline(&svg, HEADLINE_TITLE, &headline_cells(&runs)).unwrap();
    assert!(
        std::fs::read(&svg).unwrap() == std::fs::read(results.join("headline.svg")).unwrap(),
        "results/headline.svg differs from what its CSVs give: run `static_toy --plot-headline \
         results/headline.svg --from` each of HEADLINE_RESULTS (lab/results/README.md)"
    );
}

/// A snapped-rule rerun (`madsen-snapped-*.csv`) holds every run of its cells that the plateau
/// rule stopped early (given-up runs aside, which both rules stop alike): the runs the whole
/// table keeps from the older files of those cells are then the snapped rule's too.
#[test]
fn each_rerun_holds_every_run_the_plateau_rule_stopped_in_its_cells() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut files: Vec<_> = (std::fs::read_dir(&results).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    files.sort();
    let read =
        |name: &String| read_csv(&results.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let key = |r: &RunResult| (r.label(), r.task, r.seed);
    let reruns: Vec<RunResult> = (files.iter())
        .filter(|n| n.starts_with("madsen-snapped-"))
        .flat_map(read)
        .collect();
    assert!(!reruns.is_empty(), "no madsen-snapped-*.csv in results/");
    let rerun: HashSet<_> = reruns.iter().map(key).collect();
    let cells: HashSet<_> = reruns.iter().map(|r| (r.label(), r.task)).collect();
    let older =
        (files.iter()).filter(|n| n.starts_with("madsen-table-") || n.starts_with("madsen-whole-"));
    for name in older {
        for run in read(name) {
            let stopped = run.stopped_at_step.is_some() && !run.gave_up;
            if stopped && cells.contains(&(run.label(), run.task)) {
                assert!(
                    rerun.contains(&key(&run)),
                    "{name}: {} {} seed {} was stopped by the plateau rule but no \
                     madsen-snapped-*.csv reruns it",
                    run.label(),
                    run.task,
                    run.seed
                );
            }
        }
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

/// Madsen & Johansen's proof was rerun for its wall time (lab/README.md, "Madsen & Johansen's
/// protocol"), which says every run of it is the same to the bit as in the committed
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
/// (lab/README.md, "The whole table"), which says the rule that ended its 20 runs at 2.0e6 to
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

/// The table of the reference task's recommended stacks in lab/README.md ("The recommended unit
/// per operation") gives, for `×`, `÷` and `√`, the rates its committed results give: the
/// recipe's runs learned (formula read back; the threshold's count beside it where they
/// differ), the same from one initialisation, and those runs before polish and snap.
#[test]
fn the_recommended_stacks_table_is_what_the_results_give() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cells = [
        ("a · b", "mul", Operation::Mul),
        ("a / b", "div-sqrt", Operation::Div),
        ("√a", "div-sqrt", Operation::Sqrt),
    ];
    for (name, file, op) in cells {
        let counts = |kind: &str| {
            let path = root.join(format!("results/reference-{kind}-{file}-100-seeds.csv"));
            let runs: Vec<RunResult> = (read_csv(&path).unwrap().into_iter())
                .filter(|r| r.task == op)
                .collect();
            let count = |f: fn(&RunResult) -> bool| runs.iter().filter(|r| f(r)).count();
            let plain = count(|r| r.plain_success == Some(true));
            (
                count(RunResult::learned),
                count(|r| r.success),
                plain,
                runs.len(),
            )
        };
        let cell = |(learned, success, _, n): (usize, usize, usize, usize)| match learned == success
        {
            true => format!("{learned}/{n}"),
            false => format!("{learned}/{n} ({success}/{n} by the threshold)"),
        };
        let (recipe, one) = (counts("recommended"), counts("one-init"));
        let row = format!("| {} | {} | {}/{} |", cell(recipe), cell(one), one.2, one.3);
        let line = (readme.lines())
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("no row for {name} in lab/README.md"));
        assert!(
            line.contains(&row),
            "{name}: the results give {row}\nREADME: {line}"
        );
    }
}

/// The per-range tables of the single-module task in lab/README.md ("The Primer's
/// single-module benchmark", "The Hill Space unit on their task") give, for each range whose
/// results file is committed, the successes its runs give, model by model (of which, in
/// brackets, the formula read back as the target): each table's header
/// is `| <operation>, <file prefix>, range (train → test) | model | … |`, each row `| K: … |`.
#[test]
fn the_single_module_tables_are_what_the_results_give() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut tables = 0;
    for (at, header) in lines.iter().enumerate() {
        let Some(rest) = header.strip_prefix("| `") else {
            continue;
        };
        let Some((op, rest)) = rest.split_once("`, `") else {
            continue;
        };
        let Some((prefix, rest)) = rest.split_once("`, range (train → test) |") else {
            continue;
        };
        let op: Operation = op.parse().unwrap_or_else(|e| panic!("{header}: {e}"));
        let models: Vec<ModelKind> = (rest.split('|').map(str::trim).filter(|m| !m.is_empty()))
            .map(|m| m.parse().unwrap_or_else(|e| panic!("{header}: {e}")))
            .collect();
        tables += 1;
        for row in lines[at + 2..].iter().take_while(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let Some((k, _)) = cells[1].split_once(':') else {
                continue; // the total row
            };
            let path = root.join(format!("results/{prefix}-range{k}.csv"));
            let runs = read_csv(&path).unwrap_or_else(|e| panic!("{row}: {e}"));
            for (model, cell) in models.iter().zip(&cells[2..]) {
                let of: Vec<&RunResult> = (runs.iter())
                    .filter(|r| r.model == *model && r.task == op)
                    .collect();
                let success = of.iter().filter(|r| r.success).count();
                let learned = of.iter().filter(|r| r.learned()).count();
                let want = format!("{success}/{} ({learned})", of.len());
                assert!(
                    cell.starts_with(&want),
                    "{prefix} {op} range {k} {model}: the results give {want}, README {cell}"
                );
            }
        }
    }
    assert!(tables > 0, "no single-module table in lab/README.md");
}

/// The per-range figures of the single-module task are those their results files give
/// (`static_toy --plot-ranges results/PREFIX-ranges.svg --from results/PREFIX-range0.csv …`,
/// every range committed so far, in order; for the Primer's benchmark also by its ε-threshold,
/// `--primer-threshold --inputs 2` into `primer-ranges-eps.svg`), and the lab README holds the
/// totals table that command prints.
#[test]
fn the_range_figures_are_the_ones_the_results_give() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = root.join("results");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (prefix, primer_inputs) in [("primer", Some(2)), ("mistry-hill", None)] {
        let per_range: Vec<Vec<RunResult>> = (0..9)
            .map(|k| results.join(format!("{prefix}-range{k}.csv")))
            .take_while(|p| p.exists())
            .map(|p| read_csv(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        let mut figures = vec![(format!("{prefix}-ranges.svg"), RangeCriterion::Recorded)];
        if let Some(inputs) = primer_inputs {
            let criterion = RangeCriterion::Primer { inputs };
            figures.push((format!("{prefix}-ranges-eps.svg"), criterion));
            let totals = range_totals(&per_range, inputs);
            assert!(
                readme.contains(&totals),
                "lab/README.md lacks the totals of {prefix}'s results:\n{totals}"
            );
        }
        for (name, criterion) in figures {
            let dir = tempfile::tempdir().unwrap();
            let svg = dir.path().join("ranges.svg");
            let series = range_series(&per_range, criterion);
            plot_range_rates(&svg, criterion.title(), &series).unwrap();
            let committed = results.join(name);
            assert!(
                std::fs::read(&svg).unwrap() == std::fs::read(&committed).unwrap(),
                "{} differs from what its CSVs give: run `static_toy --plot-ranges` with \
                 `--from` each of its range files in order (lab/results/README.md)",
                committed.display()
            );
        }
    }
}
