//! Every backend computes the same numbers for the same weights, to within what f32 rounding
//! allows.
//!
//! Each CI run (one per backend feature) checks its backend's output and gradients against an
//! independent f64 evaluation of the formulas that also bounds the error of any f32 evaluation
//! (`common::bound`); with both `flex` and `ndarray` compiled in, the two are also compared with
//! each other.

mod common;

use burn::tensor::Device;
use common::bound::{self, Bounded, NaluParams, U32, assert_within};
use common::{NaluWeights, inputs, matrix, to_f64};

const BATCH: usize = 6;
const D_IN: usize = 5;
const D_OUT: usize = 3;
const EPSILON: f64 = 1e-7;

fn params(w: &NaluWeights) -> NaluParams<'_> {
    NaluParams {
        w_hat: &w.w_hat,
        m_hat: &w.m_hat,
        gate: w.gate.as_deref(),
        epsilon: EPSILON,
        d_in: D_IN,
        d_out: D_OUT,
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
        let exact: Vec<Bounded> = x.iter().map(|&v| Bounded::exact(v, U32)).collect();
        let want = params(&weights).forward(&exact).y;
        assert_within(&to_f64(y), &want, &format!("{device:?} gated={gated}"));
    }
}

/// Output and all gradients of `Σ y²` for a gated NALU on `device`.
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

const NAMES: [&str; 5] = [
    "output",
    "w_hat grad",
    "m_hat grad",
    "gate grad",
    "input grad",
];

fn reference_outputs_and_grads() -> Vec<Vec<Bounded>> {
    let weights = NaluWeights::random(D_IN, D_OUT, true, 20);
    let r = bound::gated_nalu(&params(&weights), &inputs(BATCH, D_IN, 4), U32);
    vec![r.y, r.dw_hat, r.dm_hat, r.dgate, r.dx]
}

#[test]
fn default_backend_gradients_match_reference_formulas() {
    let device = Device::default();
    let got = outputs_and_grads(&device);
    for ((g, w), name) in got.iter().zip(reference_outputs_and_grads()).zip(NAMES) {
        assert_within(g, &w, &format!("{device:?} {name}"));
    }
}

#[test]
#[cfg(all(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // Device::ndarray: the backend is deprecated upstream, still supported here
fn flex_and_ndarray_agree() {
    let flex = outputs_and_grads(&Device::flex());
    let ndarray = outputs_and_grads(&Device::ndarray());
    // Each is within twice its bound of the exact value, so they are within four of each other.
    for (((f, n), w), name) in flex
        .iter()
        .zip(&ndarray)
        .zip(reference_outputs_and_grads())
        .zip(NAMES)
    {
        for (i, ((f, n), w)) in f.iter().zip(n).zip(&w).enumerate() {
            assert!(
                (f - n).abs() <= 4.0 * w.e,
                "{name}[{i}]: flex {f}, ndarray {n}, bound {:e}",
                w.e
            );
        }
    }
}
