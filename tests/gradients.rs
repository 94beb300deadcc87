//! Gradients of every parameter and of the input against central finite differences, in f64.

mod common;

use std::sync::OnceLock;

use burn::tensor::{Device, FloatDType, Gradients, Tensor};
use burn_nalu::{Nac, Nalu};
use common::{NaluWeights, inputs, matrix, to_f64, values};

const BATCH: usize = 5;
const STEP: f64 = 1e-6;
/// Central differences with step 1e-6 are accurate to about 1e-9 here; 1e-6 leaves a margin
/// while any wrong or missing term is off by O(1).
const TOLERANCE: f64 = 1e-6;

/// The default device with f64 as its float type, configured once before any tensor exists.
fn f64_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut device = Device::default();
            device
                .configure(FloatDType::F64)
                .expect("configure f64 before any tensor is created");
            device
        })
        .clone()
}

/// What a gradient is taken with respect to.
#[derive(Clone, Copy, Debug)]
enum Wrt {
    WHat,
    MHat,
    Gate,
    Input,
}

/// The layer under test, built from plain weights on any device.
enum Unit {
    Nac(Nac),
    Nalu(Nalu),
}

impl Unit {
    fn build(nac: bool, weights: &NaluWeights, device: &Device) -> Self {
        if nac {
            Unit::Nac(weights.nac(device))
        } else {
            Unit::Nalu(weights.nalu(device))
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Unit::Nac(nac) => nac.forward(x),
            Unit::Nalu(nalu) => nalu.forward(x),
        }
    }

    fn param_grad(&self, wrt: Wrt, grads: &Gradients) -> Option<Tensor<2>> {
        let nac = match self {
            Unit::Nac(nac) => nac,
            Unit::Nalu(nalu) => &nalu.nac,
        };
        match (wrt, self) {
            (Wrt::WHat, _) => nac.w_hat.grad(grads),
            (Wrt::MHat, _) => nac.m_hat.grad(grads),
            (Wrt::Gate, Unit::Nalu(nalu)) => nalu.gate.as_ref()?.grad(grads),
            _ => None,
        }
    }
}

/// The scalar `L = Σ y ⊙ R` with a fixed `R`, so every output element counts with its own weight.
fn loss(y: Tensor<2>, device: &Device) -> Tensor<1> {
    let [rows, cols] = y.dims();
    y.mul(matrix(&values(rows * cols, 99, 1.0), rows, cols, device))
        .sum()
}

/// Adds `delta` to element `i` of the weights or the input that `wrt` names.
fn perturbed(
    w: &NaluWeights,
    x: &[f64],
    wrt: Wrt,
    i: usize,
    delta: f64,
) -> (NaluWeights, Vec<f64>) {
    let (mut w, mut x) = (w.clone(), x.to_vec());
    match wrt {
        Wrt::WHat => w.w_hat[i] += delta,
        Wrt::MHat => w.m_hat[i] += delta,
        Wrt::Gate => w.gate.as_mut().expect("gated weights")[i] += delta,
        Wrt::Input => x[i] += delta,
    }
    (w, x)
}

/// Checks the autodiff gradient of every element named by `wrts` against central differences.
fn check(nac: bool, weights: &NaluWeights, wrts: &[Wrt]) {
    let device = f64_device();
    let ad = device.clone().autodiff();
    let d_in = weights.d_input;
    let x = inputs(BATCH, d_in, 7);

    let unit = Unit::build(nac, weights, &ad);
    let x_ad = matrix(&x, BATCH, d_in, &ad).require_grad();
    let grads = loss(unit.forward(x_ad.clone()), &ad).backward();

    let eval = |w: &NaluWeights, x: &[f64]| -> f64 {
        let y = Unit::build(nac, w, &device).forward(matrix(x, BATCH, d_in, &device));
        loss(y, &device).into_scalar::<f64>()
    };

    for &wrt in wrts {
        let analytic = match wrt {
            Wrt::Input => x_ad.grad(&grads),
            _ => unit.param_grad(wrt, &grads),
        };
        let analytic = to_f64(analytic.unwrap_or_else(|| panic!("no gradient for {wrt:?}")));
        for (i, &a) in analytic.iter().enumerate() {
            let (wp, xp) = perturbed(weights, &x, wrt, i, STEP);
            let (wm, xm) = perturbed(weights, &x, wrt, i, -STEP);
            let numeric = (eval(&wp, &xp) - eval(&wm, &xm)) / (2.0 * STEP);
            let err = (a - numeric).abs() / (1.0 + numeric.abs());
            assert!(
                err < TOLERANCE,
                "{wrt:?}[{i}]: autodiff {a}, finite difference {numeric} (error {err:e})"
            );
        }
    }
}

#[test]
fn nac_gradients_match_finite_differences() {
    let weights = NaluWeights::random(4, 3, false, 1);
    check(true, &weights, &[Wrt::WHat, Wrt::MHat, Wrt::Input]);
}

#[test]
fn gated_nalu_gradients_match_finite_differences() {
    let weights = NaluWeights::random(4, 3, true, 2);
    check(
        false,
        &weights,
        &[Wrt::WHat, Wrt::MHat, Wrt::Gate, Wrt::Input],
    );
}

#[test]
fn ungated_nalu_gradients_match_finite_differences() {
    let weights = NaluWeights::random(4, 3, false, 3);
    check(false, &weights, &[Wrt::WHat, Wrt::MHat, Wrt::Input]);
}

#[test]
fn computation_really_runs_in_f64() {
    // 1 + 1e-12 is representable in f64 and rounds to 1 in f32: a silent f32 fallback would
    // make every finite difference above meaningless.
    let device = f64_device();
    let t = matrix(&[1.0 + 1e-12], 1, 1, &device);
    assert_eq!(to_f64(t)[0], 1.0 + 1e-12);
}
