//! The summary tables of the committed results, generated into Markdown files of their own
//! (`results/summaries/`) that a test generates again and compares, so that a document links
//! to a table the results give rather than copying it into its prose.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::files::{read_csv, read_pooled};
use super::stats::summarize;
use super::tables::{comparison_table, summary_table};
use crate::RunResult;
use crate::error::ExperimentError;

/// The file of the pooled Madsen & Johansen table, among [`summaries`].
pub const WHOLE_TABLE: &str = "madsen-whole-table.md";

/// Whether a results file holds runs of Madsen & Johansen's table (pooled into [`WHOLE_TABLE`]).
fn table_run(name: &str) -> bool {
    (name.starts_with("madsen-table-") || name.starts_with("madsen-whole-") || rerun(name))
        && name.ends_with(".csv")
}

/// Whether a results file reruns runs of the table under the early stop's snapped rule
/// ([`StopRule::Snapped`](crate::StopRule::Snapped)): in [`WHOLE_TABLE`] each of its runs
/// replaces the other files' run of the same cell and seed, which ran with the plateau rule.
fn rerun(name: &str) -> bool {
    name.starts_with("madsen-snapped-")
}

/// The runs of results files pooled ([`read_pooled`]) as the table reads them: a run that a
/// `madsen-snapped-*.csv` holds stands in the place of the other files' run of the same cell and
/// seed (the plateau rule's).
///
/// Rerunning only the seeds the plateau rule stopped is enough: the snapped rule stops a run
/// only where the plateau rule would, the give-up rule is the same in both, and a population's
/// members train apart, so a run the plateau rule never stopped is the snapped rule's run.
///
/// # Errors
///
/// As [`read_pooled`], for the rerun files and the others apart.
pub fn read_table_runs(files: &[&Path]) -> Result<Vec<RunResult>, ExperimentError> {
    let is_rerun = |p: &&Path| p.file_name().is_some_and(|n| rerun(&n.to_string_lossy()));
    let (reruns, first): (Vec<&Path>, Vec<&Path>) = files.iter().copied().partition(is_rerun);
    let key = |r: &RunResult| (r.label(), r.task, r.seed);
    let mut newer: Vec<Option<RunResult>> = read_pooled(&reruns)?.into_iter().map(Some).collect();
    let index: HashMap<_, usize> = (newer.iter().enumerate())
        .map(|(k, r)| (key(r.as_ref().expect("all present")), k))
        .collect();
    let mut runs: Vec<RunResult> = (read_pooled(&first)?.into_iter())
        .map(|run| match index.get(&key(&run)) {
            Some(&k) => newer[k].take().unwrap_or(run),
            None => run,
        })
        .collect();
    runs.extend(newer.into_iter().flatten());
    Ok(runs)
}

/// The summary files of the results directory `results`, each `(file name, Markdown)`, in name
/// order: for every `NAME.csv`, `NAME.md` with its per-task summary table; and
/// [`WHOLE_TABLE`], the comparison table of Madsen & Johansen's table runs
/// (`madsen-table-*.csv`, `madsen-whole-*.csv`) pooled, a seed held by two files counted once,
/// each run of a `madsen-snapped-*.csv` in the place of its cell and seed ([`read_table_runs`]).
///
/// # Errors
///
/// A results file that cannot be read, or that holds no run.
pub fn summaries(results: &Path) -> Result<Vec<(String, String)>, ExperimentError> {
    let mut csvs: Vec<PathBuf> = std::fs::read_dir(results)
        .map_err(|e| ExperimentError::io(results, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    // Name order, as the shell's glob lists them: a run in two files counts from the first.
    csvs.sort();
    let mut out = Vec::new();
    let mut table_runs = Vec::new();
    for path in &csvs {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let runs = read_csv(path)?;
        if runs.is_empty() {
            return Err(ExperimentError::format(path, "no runs"));
        }
        let table = summary_table(&summarize(&runs));
        let md = name.trim_end_matches(".csv").to_string() + ".md";
        out.push((md, document(&format!("`{name}`: every run of it"), &table)));
        if table_run(&name) {
            table_runs.push(path.as_path());
        }
    }
    if !table_runs.is_empty() {
        let runs = read_table_runs(&table_runs)?;
        let what = "Madsen & Johansen's static table: every `madsen-table-*.csv` and \
                    `madsen-whole-*.csv` pooled, each cell of a `madsen-snapped-*.csv` (the \
                    early stop's snapped rule) from those files alone, beside the published \
                    rates";
        out.push((WHOLE_TABLE.into(), document(what, &comparison_table(&runs))));
    }
    out.sort();
    Ok(out)
}

/// One summary file: what it summarises, how it is made, and the table.
fn document(what: &str, table: &str) -> String {
    format!(
        "Summary of {what}.\n\nGenerated from the committed results by `cargo run --release \
         --example static_toy -- --summaries lab/results`; `cargo test` checks it. Do not edit.\n\n\
         {}\n",
        table.trim_end()
    )
}

/// Writes [`summaries`] of `results` into `results/summaries/` (created), each file replaced
/// whole, and removes any other `.md` file there (a results file gone). Returns the files written.
///
/// # Errors
///
/// As [`summaries`], or a file that cannot be written or removed.
pub fn write_summaries(results: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let dir = results.join("summaries");
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::io(&dir, e))?;
    let files = summaries(results)?;
    for entry in std::fs::read_dir(&dir).map_err(|e| ExperimentError::io(&dir, e))? {
        let path = entry.map_err(|e| ExperimentError::io(&dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".md") && !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(&path).map_err(|e| ExperimentError::io(&path, e))?;
        }
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        crate::write::write_file(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
