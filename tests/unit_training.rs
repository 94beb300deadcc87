//! Each regularised unit, trained alone with its regulariser and clamp, finds the discrete
//! weights of a small problem from a fixed seed (600 Adam steps of batch 32): its weights end
//! within snapping distance of the solution, so that it reads back as the target formula.

use std::sync::{Mutex, MutexGuard};

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::{ArithmeticUnit, NauConfig, NmuConfig, RealNpuConfig, RegularizerSchedule};

const STEPS: usize = 600;
const BATCH: usize = 32;

/// Trains `unit` on `target(x)` for inputs uniform in `range`, with the regulariser ramped in
/// over the second third of the run and the unit's clamp after every step.
fn fit<U>(mut unit: U, target: fn(Tensor<2>) -> Tensor<2>, range: (f64, f64), device: &Device) -> U
where
    U: ArithmeticUnit,
{
    let mut optim = AdamConfig::new().init();
    let schedule = RegularizerSchedule {
        lambda: 0.1,
        start: STEPS / 3,
        end: 2 * STEPS / 3,
    };
    let d_in = 4;
    for step in 0..STEPS {
        let x = Tensor::<2>::random(
            [BATCH, d_in],
            Distribution::Uniform(range.0, range.1),
            device,
        );
        let err = unit.forward_members(x.clone(), 1).sub(target(x));
        let mut loss = err.clone().mul(err).mean();
        if let Some(reg) = unit.regularizer_members(1) {
            loss = loss.add(reg.mul_scalar(schedule.weight(step)));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &unit);
        unit = optim.step(0.05, unit, grads).clamp_members();
    }
    unit
}

/// Burn's random generator is process-wide: a test seeds it, draws its weights and batches,
/// and only then lets the next test in, so every run sees the same numbers.
fn seeded(seed: u64) -> (MutexGuard<'static, ()>, Device) {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let device = Device::default().autodiff();
    device.seed(seed);
    (guard, device)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The distance within which `burn_nalu::formula` reads a weight as its discrete value.
const SNAP: f32 = 0.1;

/// Every weight within [`SNAP`] of the discrete solution `want`: the trained unit reads back as
/// the target formula. (How close the weights settle inside that distance depends on Adam's
/// step and the regulariser's pull, and on the rounding of each step, which differs between
/// backends and CPUs; it is no part of what the unit learned.)
fn assert_snaps_to(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < SNAP, "got {got:?}, want {want:?}");
    }
}

#[test]
fn nau_learns_a_signed_sum_exactly() {
    let (_lock, device) = seeded(1);
    let unit = NauConfig::new(4, 1).init(&device);
    // y = x0 + x2 − x3
    let unit = fit(
        unit,
        |x| {
            let w = Tensor::<2>::from_floats([[1.0], [0.0], [1.0], [-1.0]], &x.device());
            x.matmul(w)
        },
        (-2.0, 2.0),
        &device,
    );
    assert_snaps_to(&values(unit.weight.val()), &[1.0, 0.0, 1.0, -1.0]);
}

#[test]
fn nmu_learns_a_product_of_signed_inputs_exactly() {
    let (_lock, device) = seeded(2);
    let unit = NmuConfig::new(4, 1).init(&device);
    // y = x0 · x2, inputs of both signs.
    let unit = fit(
        unit,
        |x| x.clone().narrow(1, 0, 1).mul(x.narrow(1, 2, 1)),
        (-2.0, 2.0),
        &device,
    );
    assert_snaps_to(&values(unit.weight.val()), &[1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn realnpu_learns_a_quotient_exactly() {
    let (_lock, device) = seeded(3);
    let unit = RealNpuConfig::new(4, 1).init(&device);
    // y = x1 / x3 on positive inputs.
    let unit = fit(
        unit,
        |x| x.clone().narrow(1, 1, 1).div(x.narrow(1, 3, 1)),
        (0.5, 2.0),
        &device,
    );
    assert_snaps_to(&values(unit.w_re.val()), &[0.0, 1.0, 0.0, -1.0]);
}
