//! The committed trained weights (`weights/`, written by
//! `cargo run --release --example static_toy -- --out weights`) reproduce the extrapolation MSE
//! that `weights/results.json` and the README report.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use burn_nalu::experiments::report::format_metric;
use burn_nalu::experiments::{ModelKind, Operation, ROWS, StaticToyData, StaticToyModel, mse};
use burn_nalu::ops::fused;

fn weights_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/weights"))
}

fn reported() -> Vec<serde_json::Value> {
    let json = std::fs::read(weights_dir().join("results.json")).expect("weights/results.json");
    serde_json::from_slice::<serde_json::Value>(&json)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_task_has_committed_weights() {
    let tasks: Vec<String> = reported()
        .iter()
        .map(|r| r["task"].as_str().unwrap().to_owned())
        .collect();
    let all: Vec<String> = Operation::ALL
        .iter()
        .map(|op| op.name().to_owned())
        .collect();
    assert_eq!(tasks, all);
}

#[test]
fn committed_weights_reproduce_reported_extrapolation_mse() {
    let device = Device::default();
    for run in reported() {
        let kind: ModelKind = run["model"].as_str().unwrap().parse().unwrap();
        let op: Operation = run["task"].as_str().unwrap().parse().unwrap();
        let seed = run["seed"].as_u64().unwrap();
        let hidden = run["hidden"].as_u64().unwrap() as usize;
        let path = weights_dir().join(format!("{kind}-{op}-seed{seed}.bpk"));
        let model = StaticToyModel::init(kind, hidden, 0, &device)
            .try_load_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let data = StaticToyData::generate(op, ROWS, seed);
        let (x, y) = data.extrapolation.tensors(&device);
        // Reported on flex, which reproduces them exactly. Other backends take the generic
        // (unfused) path, whose rounding moves a tiny MSE (7.7e-7, of a solved a + b) by 1.6e-3.
        let tolerance = if fused::supported(&x) { 1e-9 } else { 1e-2 };
        let got = mse(&model, x, y);
        let want = run["extrapolation_mse"].as_f64().unwrap();
        let err = (got - want).abs() / want;
        assert!(
            err < tolerance,
            "{op}: extrapolation MSE {got}, reported {want} (relative {err:e})"
        );
    }
}

#[test]
fn readme_reports_the_committed_results() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for run in reported() {
        let op: Operation = run["task"].as_str().unwrap().parse().unwrap();
        let row = format!(
            "| {} | {} | {} | {} | {} |",
            run["model"].as_str().unwrap(),
            op.formula(),
            run["seed"],
            format_metric(run["train_mse"].as_f64().unwrap()),
            format_metric(run["extrapolation_mse"].as_f64().unwrap()),
        );
        assert!(readme.contains(&row), "README lacks the row starting {row}");
    }
}
