//! Every backend computes the same numbers for the same weights.
//!
//! Each CI run (one per backend feature) checks its backend against an independent plain-Rust
//! f64 evaluation of the formulas; with both `flex` and `ndarray` compiled in, the two are
//! also compared with each other directly, outputs and gradients.

mod common;

use burn::tensor::Device;
use common::{NaluWeights, inputs, matrix, to_f64};

const BATCH: usize = 6;
const D_IN: usize = 5;
const D_OUT: usize = 3;

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The NALU formulas evaluated element by element in f64, with no tensor library involved.
fn reference_nalu(w: &NaluWeights, x: &[f64], epsilon: f64) -> Vec<f64> {
    let (d_in, d_out) = (w.d_input, w.d_output);
    let weight: Vec<f64> = (0..d_in * d_out)
        .map(|k| w.w_hat[k].tanh() * sigmoid(w.m_hat[k]))
        .collect();
    let mut y = Vec::with_capacity(x.len() / d_in * d_out);
    for row in x.chunks(d_in) {
        for j in 0..d_out {
            let dot = |f: &dyn Fn(f64) -> f64, m: &[f64]| -> f64 {
                (0..d_in).map(|i| f(row[i]) * m[i * d_out + j]).sum()
            };
            let a = dot(&|v| v, &weight);
            let m = dot(&|v| (v.abs() + epsilon).ln(), &weight).exp();
            y.push(match &w.gate {
                Some(gate) => {
                    let g = sigmoid(dot(&|v| v, gate));
                    g * a + (1.0 - g) * m
                }
                None => a + m,
            });
        }
    }
    y
}

fn assert_close(got: &[f64], expected: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let err = (g - e).abs() / (1e-6 + e.abs());
        assert!(
            err < rel,
            "{what}[{i}]: got {g}, expected {e} (relative error {err:e})"
        );
    }
}

#[test]
fn default_backend_matches_reference_formulas() {
    let device = Device::default();
    let x = inputs(BATCH, D_IN, 3);
    for gated in [true, false] {
        let weights = NaluWeights::random(D_IN, D_OUT, gated, 10);
        let y = weights
            .nalu(&device)
            .forward(matrix(&x, BATCH, D_IN, &device));
        let expected = reference_nalu(&weights, &x, 1e-7);
        // f32 evaluation of a handful of exp/log/tanh: a few ulps.
        assert_close(
            &to_f64(y),
            &expected,
            1e-5,
            &format!("{device:?} gated={gated}"),
        );
    }
}

/// Output and all gradients of a gated NALU on `device`.
#[cfg(all(feature = "flex", feature = "ndarray"))]
fn outputs_and_grads(device: &Device) -> Vec<Vec<f64>> {
    let ad = device.clone().autodiff();
    let weights = NaluWeights::random(D_IN, D_OUT, true, 20);
    let nalu = weights.nalu(&ad);
    let x = matrix(&inputs(BATCH, D_IN, 4), BATCH, D_IN, &ad).require_grad();
    let y = nalu.forward(x.clone());
    let grads = y.clone().powi_scalar(2).sum().backward();
    vec![
        to_f64(y),
        to_f64(nalu.nac.w_hat.grad(&grads).unwrap()),
        to_f64(nalu.nac.m_hat.grad(&grads).unwrap()),
        to_f64(nalu.gate.as_ref().unwrap().grad(&grads).unwrap()),
        to_f64(x.grad(&grads).unwrap()),
    ]
}

#[test]
#[cfg(all(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // Device::ndarray: the backend is deprecated upstream, still supported here
fn flex_and_ndarray_agree() {
    let flex = outputs_and_grads(&Device::flex());
    let ndarray = outputs_and_grads(&Device::ndarray());
    let names = [
        "output",
        "w_hat grad",
        "m_hat grad",
        "gate grad",
        "input grad",
    ];
    for ((f, n), name) in flex.iter().zip(&ndarray).zip(names) {
        assert_close(n, f, 1e-5, name);
    }
}
