//! The fused NALU layer (`ops::gated_nalu`, one op with a hand-written backward on flex) and its
//! reference twin (`ops::gated_nalu_reference`, a composition of Burn ops) both stay within
//! the rounding bound of the exact formulas, forward and backward, in f32 and f64, on the
//! direct kernels of small layers and the GEMM kernels of large ones.

mod common;

use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_nalu::ops;
use common::bound::{self, NaluParams, U32, U64, assert_within};
use common::{to_f64, values};

/// Output and gradients `[y, dx, dŴ, dM̂, dG]` of `Σ y²` for `x: [batch, d_in]` and weights
/// `[d_in, d_out]` in `dtype`, through the fused op or its reference twin; and the inputs.
fn run(dims: [usize; 3], dtype: DType, fused: bool) -> ([Vec<f64>; 5], [Vec<f64>; 4]) {
    let [batch, d_in, d_out] = dims;
    let device = Device::default().autodiff();
    let inputs = [
        values(batch * d_in, 4, 2.0),
        values(d_in * d_out, 1, 1.5),
        values(d_in * d_out, 2, 1.5),
        values(d_in * d_out, 3, 1.0),
    ]
    .map(|v| v.iter().map(|&x| x as f32 as f64).collect::<Vec<_>>());
    let leaf = |v: &[f64], shape: [usize; 2]| {
        Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device)
            .cast(dtype)
            .require_grad()
    };
    let x = leaf(&inputs[0], [batch, d_in]);
    let [w_hat, m_hat, gate] = [1, 2, 3].map(|k| leaf(&inputs[k], [d_in, d_out]));
    let args = (x.clone(), w_hat.clone(), m_hat.clone(), gate.clone(), 1e-7);
    let y = match fused {
        true => ops::gated_nalu(args.0, args.1, args.2, args.3, args.4),
        false => ops::gated_nalu_reference(args.0, args.1, args.2, args.3, args.4),
    };
    let grads = y.clone().mul(y.clone()).sum().backward();
    let grad = |t: &Tensor<2>| to_f64(t.grad(&grads).unwrap());
    let got = [to_f64(y), grad(&x), grad(&w_hat), grad(&m_hat), grad(&gate)];
    (got, inputs)
}

fn both_paths_within_the_bound(dims: [usize; 3]) {
    for (dtype, u) in [(DType::F32, U32), (DType::F64, U64)] {
        for fused in [true, false] {
            let (got, [x, w_hat, m_hat, gate]) = run(dims, dtype, fused);
            let [_, d_in, d_out] = dims;
            let params = NaluParams {
                w_hat: &w_hat,
                m_hat: &m_hat,
                gate: Some(&gate),
                epsilon: 1e-7,
                d_in,
                d_out,
            };
            let r = bound::gated_nalu(&params, &x, u);
            let want = [r.y, r.dx, r.dw_hat, r.dm_hat, r.dgate];
            let names = ["output", "dx", "dŴ", "dM̂", "dG"];
            for ((g, w), name) in got.iter().zip(&want).zip(names) {
                assert_within(g, w, &format!("{dims:?} {dtype:?} fused={fused} {name}"));
            }
        }
    }
}

#[test]
fn direct_kernels_are_within_the_rounding_bound() {
    both_paths_within_the_bound([5, 7, 3]);
    // The static toy's first layer.
    both_paths_within_the_bound([64, 100, 2]);
}

#[test]
fn gemm_kernels_are_within_the_rounding_bound() {
    // Above the 2^18 multiply-adds where the fused layer switches to GEMM, with sizes that
    // fill no GEMM block exactly.
    let dims = [67, 93, 45];
    assert!(dims.iter().product::<usize>() > 1 << 18);
    both_paths_within_the_bound(dims);
}
