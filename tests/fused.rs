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

/// Output and gradients `[z, dx, dW]` of `Σ z²` for the NMU product of `x: [batch, d_in]` and
/// `W: [d_in, d_out]` in `dtype`, through the fused op or its reference twin.
fn nmu_run(x: &[f64], w: &[f64], dims: [usize; 3], dtype: DType, fused: bool) -> [Vec<f64>; 3] {
    let [batch, d_in, d_out] = dims;
    let device = Device::default().autodiff();
    let leaf = |v: &[f64], shape: [usize; 2]| {
        Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device)
            .cast(dtype)
            .require_grad()
    };
    let (x_t, w_t) = (leaf(x, [batch, d_in]), leaf(w, [d_in, d_out]));
    let z = match fused {
        true => ops::nmu_product(x_t.clone(), w_t.clone()),
        false => ops::nmu_product_reference(x_t.clone(), w_t.clone()),
    };
    let grads = z.clone().mul(z.clone()).sum().backward();
    let grad = |t: &Tensor<2>| to_f64(t.grad(&grads).unwrap());
    [to_f64(z), grad(&x_t), grad(&w_t)]
}

/// The exact `[z, dx, dW]` of `Σ z²` with their rounding bounds at unit roundoff `u`: with the
/// factors `f_ij = x_i·W_ij + (1 − W_ij)`, `z_j = Π_i f_ij`, the cofactors
/// `c_ij = Π_{k≠i} f_kj`, `dx_i = Σ_j 2z_j·c_ij·W_ij` and `dW_ij = Σ_rows 2z_j·c_ij·(x_i − 1)`.
fn nmu_exact(x: &[f64], w: &[f64], dims: [usize; 3], u: f64) -> [Vec<bound::Bounded>; 3] {
    use bound::Bounded;
    let [batch, d_in, d_out] = dims;
    let exact = |v: f64| Bounded::exact(v, u);
    let product = |fs: &mut dyn Iterator<Item = Bounded>| fs.fold(exact(1.0), |p, f| p * f);
    let mut z = Vec::new();
    let mut dx_terms = vec![Vec::new(); batch * d_in];
    let mut dw_terms = vec![Vec::new(); d_in * d_out];
    for r in 0..batch {
        for j in 0..d_out {
            let (x_r, w_j) = (|i: usize| x[r * d_in + i], |i: usize| w[i * d_out + j]);
            let f = |i: usize| exact(x_r(i)) * exact(w_j(i)) + exact(w_j(i)).one_minus();
            let z_rj = product(&mut (0..d_in).map(f));
            for i in 0..d_in {
                let cofactor = product(&mut (0..d_in).filter(|&k| k != i).map(f));
                let g = z_rj.scale(2.0) * cofactor;
                dx_terms[r * d_in + i].push(g * exact(w_j(i)));
                dw_terms[i * d_out + j].push(g * (exact(x_r(i)) - exact(1.0)));
            }
            z.push(z_rj);
        }
    }
    let sums = |terms: Vec<Vec<Bounded>>| terms.into_iter().map(bound::sum).collect();
    [z, sums(dx_terms), sums(dw_terms)]
}

/// Inputs of either sign with `|x|` in `[0.75, 1.25]` (so that a product of 100 factors stays
/// far from f32's underflow, where relative bounds end) and some exactly 0, and weights in
/// `[0, 1]` with some exactly 0 or 1, all f32 values: where `x_i = 0` meets `W_ij = 1` a factor
/// is exactly 0, which the gradients must survive.
fn nmu_inputs(dims: [usize; 3]) -> (Vec<f64>, Vec<f64>) {
    let [batch, d_in, d_out] = dims;
    let f32_values = |v: Vec<f64>| v.into_iter().map(|v| v as f32 as f64).collect::<Vec<_>>();
    let mut x = f32_values(
        values(batch * d_in, 11, 0.25)
            .iter()
            .map(|v| 1.0 + v)
            .collect(),
    );
    let mut w = f32_values(
        values(d_in * d_out, 12, 0.5)
            .iter()
            .map(|v| v + 0.5)
            .collect(),
    );
    for k in (0..x.len()).step_by(11) {
        x[k] = -x[k];
    }
    for k in (0..x.len()).step_by(7) {
        x[k] = 0.0;
    }
    for k in (0..w.len()).step_by(5) {
        w[k] = (k / 5 % 2) as f64;
    }
    (x, w)
}

/// The fused NMU product and its reference twin stay within the rounding bound of the exact
/// formulas, forward and backward, in f32 and f64, with factors of exactly 0 among them.
#[test]
fn nmu_product_is_within_the_rounding_bound() {
    // A row tile with padding; the iNALU's sign on 100 inputs over several tiles and a short
    // last one; the NMU of Madsen & Johansen's NAU → NMU.
    for dims in [[5, 7, 3], [37, 100, 2], [16, 2, 1]] {
        let (x, w) = nmu_inputs(dims);
        for (dtype, u) in [(DType::F32, U32), (DType::F64, U64)] {
            let want = nmu_exact(&x, &w, dims, u);
            for fused in [true, false] {
                let got = nmu_run(&x, &w, dims, dtype, fused);
                for ((g, w), name) in got.iter().zip(&want).zip(["z", "dx", "dW"]) {
                    assert_within(g, w, &format!("{dims:?} {dtype:?} fused={fused} {name}"));
                }
            }
        }
    }
}
