//! The long experiments committed under `results/` (each `*.csv` holds every run of one
//! command, which README names) and the README's tables agree: every row of the summary that
//! `static_toy` prints for a results file appears verbatim in README.

use std::path::Path;

use burn_nalu::experiments::report::{comparison_table, read_csv, summarize, summary_table};

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
/// `madsen-whole-*.csv`), read together.
#[test]
fn readme_whole_table_matches_the_committed_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(root.join("results")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let table_run = name.starts_with("madsen-table-") || name.starts_with("madsen-whole-");
        if table_run && name.ends_with(".csv") {
            runs.extend(read_csv(&path).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
    }
    assert!(!runs.is_empty(), "no table runs in results/");
    for row in comparison_table(&runs).lines().skip(2) {
        assert!(
            readme.contains(row),
            "README lacks this row of the whole table:\n{row}"
        );
    }
}
