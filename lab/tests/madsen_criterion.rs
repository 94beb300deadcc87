//! The arithmetic of Madsen & Johansen's success criterion for `÷` and `√` (issue 20): can f32
//! pass it at all, and how close to its true value must a learned weight settle?
//!
//! The threshold is the extrapolation MSE of the true sums with their weights each moved by
//! ε = 1e-5. The true stacks of this crate, evaluated in f32 on the 10,000 extrapolation rows
//! (`U[2, 6)`), must land well inside it, and a power moved by far less than ε must already
//! fail: the margin that training in f32 has to hit.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use burn_nalu::{Nau, NauConfig, NmruConfig, RealNpu, RealNpuConfig};
use burn_nalu_lab::{MadsenSpec, MadsenTask, Operation, Task, TaskData};

const SEED: u64 = 0;

fn data(op: Operation) -> TaskData {
    MadsenTask::new(MadsenSpec::default())
        .unwrap()
        .data(op, SEED)
}

/// The NAU of the true sums: column 0 is `a`, column 1 is `b`.
fn sums(data: &TaskData, device: &Device) -> Nau {
    let mut w = vec![0f32; 100 * 2];
    data.subsets.a.iter().for_each(|&i| w[i * 2] = 1.0);
    data.subsets.b.iter().for_each(|&i| w[i * 2 + 1] = 1.0);
    let mut nau = NauConfig::new(100, 2).init(device);
    nau.weight = Param::from_data(TensorData::new(w, [100, 2]), device);
    nau
}

fn real_npu(powers: [f32; 2], gates: [f32; 2], device: &Device) -> RealNpu {
    let mut npu = RealNpuConfig::new(2, 1).init(device);
    npu.w_re = Param::from_data(TensorData::new(powers.to_vec(), [2, 1]), device);
    npu.gate = Param::from_data(TensorData::new(gates.to_vec(), [2]), device);
    npu
}

/// The extrapolation MSE, accumulated in f64, of the f32 outputs `z` of a stack.
fn mse(data: &TaskData, z: Tensor<2>) -> f64 {
    let z = z.into_data().try_to_vec::<f32>().unwrap();
    let y = &data.extrapolation.y;
    assert_eq!(z.len(), y.len());
    z.iter()
        .zip(y)
        .map(|(&z, &y)| (z as f64 - y as f64).powi(2))
        .sum::<f64>()
        / y.len() as f64
}

fn extrapolation_rows(data: &TaskData, device: &Device) -> Tensor<2> {
    let x = &data.extrapolation;
    Tensor::from_data(TensorData::new(x.x.clone(), [x.rows(), 100]), device)
}

/// `a / b` with `a`, `b` sums of 25 inputs in [2, 6): both near 100, quotients near 1. In f32
/// each sum and `exp(log a − log b)` round to a few ulp: an output error of order 1e-7, an MSE
/// of order 1e-14 (4.5e-14 on one machine), against a threshold of order 1e-11 (5.7e-12 for
/// seed 0; the numpy estimate is 8e-12). A factor 20 leaves room for any order of
/// summation and any `exp`/`ln` within a few ulp. A power moved by δ errs by `ln a · δ ≈ 4.6·δ`,
/// an MSE of `21·δ²`: 2e-9 at δ = 1e-5 (over 300 times the threshold), 3e-13 at two ulp of 1
/// (1.2e-7, some 17 times under it). A learned power must settle within about 5e-7 of its value.
#[test]
fn f32_true_weights_pass_the_division_threshold_and_a_power_off_by_1e_5_fails() {
    let device = Device::default();
    let data = data(Operation::Div);
    let threshold = data.success_threshold;
    assert!((1e-12..1e-10).contains(&threshold), "threshold {threshold}");
    let h = sums(&data, &device).forward(extrapolation_rows(&data, &device));
    let divide = |p: f32| {
        mse(
            &data,
            real_npu([p, -1.0], [1.0, 1.0], &device).forward(h.clone()),
        )
    };

    let exact = divide(1.0);
    assert!(exact < threshold / 20.0, "RealNPU {exact} vs {threshold}");
    let near = divide(1.0 - f32::EPSILON); // two ulp below 1
    assert!(
        near < threshold / 5.0,
        "power 1 − 1.2e-7: {near} vs {threshold}"
    );
    let off = divide(1.0 - 1e-5);
    assert!(
        off > threshold * 20.0,
        "power 1 − 1e-5: {off} vs {threshold}"
    );

    // The NMRU's `a · (1/b)`, the reciprocal rounded once more.
    let mut nmru = NmruConfig::new(2, 1).init(&device);
    nmru.weight = Param::from_data(TensorData::new(vec![1f32, 0.0, 0.0, 1.0], [4, 1]), &device);
    let exact = mse(&data, nmru.forward(h));
    assert!(exact < threshold / 20.0, "NMRU {exact} vs {threshold}");
}

/// `√a`, `a` near 100: outputs near 10, rounded to a few ulp (an MSE of order 1e-12; 6.8e-13 on
/// one machine) against a threshold of order 1e-8 (1.0e-8 for seed 0). A power moved by δ errs
/// by `√a · ln a · δ ≈ 46·δ`, an MSE of `2.1e3·δ²`: 2.1e-7 at δ = 1e-5 (21 times the
/// threshold), 5e-10 at δ = 5e-7 (20 times under it). A learned power must settle within about
/// 2e-6 of ½.
#[test]
fn f32_true_weights_pass_the_root_threshold_and_a_power_off_by_1e_5_fails() {
    let device = Device::default();
    let data = data(Operation::Sqrt);
    let threshold = data.success_threshold;
    let h = sums(&data, &device).forward(extrapolation_rows(&data, &device));
    let root = |p: f32| {
        mse(
            &data,
            real_npu([p, 0.0], [1.0, 0.0], &device).forward(h.clone()),
        )
    };
    let exact = root(0.5);
    assert!(exact < threshold / 20.0, "√: {exact} vs {threshold}");
    let near = root(0.5 - 5e-7);
    assert!(
        near < threshold / 5.0,
        "power 0.5 − 5e-7: {near} vs {threshold}"
    );
    let off = root(0.5 - 1e-5);
    assert!(
        off > threshold * 5.0,
        "power 0.5 − 1e-5: {off} vs {threshold}"
    );
}
