//! The committed trained weights (`weights/`, written by
//! `cargo run --release --example static_toy -- --model nalu --out weights`) reproduce the numbers
//! that `weights/results.csv` and the lab's README.md report, to within what f32 arithmetic allows.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_nalu::Nalu;
use burn_nalu_lab::report::{format_metric, read_csv, read_json};
use burn_nalu_lab::{InitScheme, LabModel, Operation, ReferenceTask, RunResult, Split, Task};
use common::bound::{Bounded, NaluParams, U32, U64};
use common::to_f64;

fn weights_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/weights"))
}

/// The committed runs, read typed from the CSV (which, unlike JSON, holds a diverged run's
/// infinite or NaN losses).
fn reported() -> Vec<RunResult> {
    read_csv(&weights_dir().join("results.csv")).expect("weights/results.csv")
}

#[test]
fn every_task_has_committed_weights() {
    let tasks: Vec<Operation> = reported().iter().map(|r| r.task).collect();
    assert_eq!(tasks, Operation::ALL);
}

/// `results.json` holds the same runs as `results.csv`, as far as JSON can (no NaN or
/// infinity: the losses of a diverged run are absent there).
#[test]
fn json_and_csv_hold_the_same_runs() {
    let json: Vec<RunResult> = read_json(&weights_dir().join("results.json")).unwrap();
    let finite = |r: &RunResult| RunResult {
        diverged_loss: r.diverged_loss.filter(|l| l.is_finite()),
        ..r.clone()
    };
    let csv: Vec<RunResult> = reported().iter().map(finite).collect();
    assert_eq!(json, csv);
}

/// One NALU layer's parameters on the host.
struct HostNalu {
    w_hat: Vec<f64>,
    m_hat: Vec<f64>,
    gate: Option<Vec<f64>>,
    epsilon: f64,
    dims: [usize; 2],
}

impl HostNalu {
    fn new(layer: &Nalu) -> Self {
        let host = |t: Tensor<2>| to_f64(t);
        Self {
            w_hat: host(layer.nac.w_hat.val()),
            m_hat: host(layer.nac.m_hat.val()),
            gate: layer.gate.as_ref().map(|g| host(g.val())),
            epsilon: layer.epsilon(),
            dims: [layer.d_input(), layer.d_output()],
        }
    }

    fn forward(&self, x: &[Bounded]) -> Vec<Bounded> {
        let params = NaluParams {
            w_hat: &self.w_hat,
            m_hat: &self.m_hat,
            gate: self.gate.as_deref(),
            epsilon: self.epsilon,
            d_in: self.dims[0],
            d_out: self.dims[1],
        };
        params.forward(x).y
    }
}

/// How far two f32 evaluations of `model`'s MSE on `split` can be apart.
///
/// Per row, any f32 evaluation is within twice the first-order bound `e_r` of the exact output
/// `v_r` (`common::bound`), so two evaluations differ by at most `4·e_r` and their MSEs by at
/// most `Σ_r 4·e_r·(2·|v_r − y_r| + 4·e_r) / n`; the MSE's own sum runs in f64 on the host.
fn mse_tolerance(model: &LabModel, split: &Split) -> f64 {
    let LabModel::Nalu(stack) = model else {
        panic!("the committed runs are NALU stacks")
    };
    let x: Vec<Bounded> = split
        .x
        .iter()
        .map(|&v| Bounded::exact(v as f64, U32))
        .collect();
    let hidden = HostNalu::new(&stack.hidden).forward(&x);
    let out = HostNalu::new(&stack.output).forward(&hidden);
    let total: f64 = out
        .iter()
        .zip(&split.y)
        .map(|(o, &y)| 4.0 * o.e * (2.0 * (o.v - y as f64).abs() + 4.0 * o.e))
        .sum();
    total / split.rows() as f64
}

/// The committed runs' train, validation and extrapolation MSE, recomputed from the weights on
/// this backend, CPU and SIMD level, agree with `results.json`, and print the same digits as
/// README wherever the arithmetic fixes them.
///
/// With the fused kernels (flex), every SIMD level and CPU computes the same f32 outputs (the
/// kernels fix their order of operations: `ops::fused` tests every level against scalar), and
/// [`mse`] sums their squared errors in f64 in row order; a different order of that sum could
/// move it by `n·u₆₄` relative, so that is the tolerance, and the printed digits must match.
/// Elsewhere the outputs are rounded differently, and the tolerance is the first-order bound of
/// [`mse_tolerance`]. It is wide for runs whose outputs are ill-conditioned (a diverged run's
/// saturated gate multiplying an overflowing product): there the digits are not fixed by the
/// arithmetic and only the bound is checked.
#[test]
fn committed_weights_reproduce_reported_metrics() {
    let device = Device::default();
    let fused = burn_nalu::backend::has_fused_kernels(&device);
    for run in reported() {
        let (kind, op, seed, hidden) = (run.model, run.task, run.seed, run.hidden);
        let path = weights_dir().join(format!("{kind}-{op}-seed{seed}.bpk"));
        let model = LabModel::init(kind, InitScheme::Reference, 100, hidden, &device)
            .try_load_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let data = ReferenceTask::default().data(op, seed);
        let splits = [
            (
                "train_mse",
                data.train_rows().expect("fixed rows"),
                run.train_mse,
            ),
            ("valid_mse", &data.valid, run.valid_mse),
            (
                "extrapolation_mse",
                &data.extrapolation,
                run.extrapolation_mse,
            ),
        ];
        for (field, split, want) in splits {
            let got = model.mse(split, &device);
            let tol = match fused {
                true => split.rows() as f64 * U64 * want,
                false => mse_tolerance(&model, split),
            };
            assert!(
                (got - want).abs() <= tol,
                "{op} {field}: {got}, reported {want}, tolerance {tol:e}"
            );
            if fused || format_metric(want - tol) == format_metric(want + tol) {
                assert_eq!(format_metric(got), format_metric(want), "{op} {field}");
            }
        }
    }
}

#[test]
fn readme_reports_the_committed_results() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for run in reported() {
        let row = format!(
            "| {} | {} | {} | {} | {} | {} |",
            run.model,
            run.task.formula(),
            run.seed,
            format_metric(run.train_mse),
            format_metric(run.extrapolation_mse),
            format_metric(run.valid_mse),
        );
        assert!(readme.contains(&row), "README lacks the row starting {row}");
    }
}
