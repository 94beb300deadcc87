//! The gated NALU layer as one fused op (forward and hand-written backward) on the flex backend.
//!
//! On small layers such as the static toy's `Nalu(100 → 2)`, a Burn op costs far more in
//! dispatch and autodiff bookkeeping (about 6 µs per op on flex) than in arithmetic, and a NALU
//! layer is some 25 ops forward and 50 backward. On large ones the generic composition makes a
//! pass over memory per element-wise op and recomputes `W`. This module computes the whole
//! gated layer over host slices, registered as a single autodiff node whose backward is written
//! out by hand: its own dot-product loops up to [`DIRECT_MAX_WORK`] multiply-adds, the `gemm`
//! crate's blocked, threaded kernels above, vectorised `exp`/`tanh`/`ln` (`ops::fast_math`)
//! for the element-wise parts. It runs on flex in f32 or f64, for one layer or a population of
//! stacked copies (member by member); other backends take `ops::gated_nalu_reference`, whose
//! results it matches to rounding (`tests/fused.rs` checks both against the exact formulas).
//! Layers whose cache passes 1 MiB keep up to four such buffers between steps, to skip the
//! page faults of fresh memory ([`release_buffers`]).
//!
//! As in Burn's `custom-cubecl-kernel` example: the backend extension is declared here, its
//! flex implementation is in `forward`, the autodiff node in `backward`, and the host loops in
//! `kernel`.

mod backward;
mod forward;
mod kernel;

pub use kernel::Recycle;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;

use super::fast_math::FastFloat;

/// Largest `batch · d_in · d_out` (per member) whose matrix products the fused layer computes
/// with its own dot-product loops; above it, a GEMM's packing and threading pay for themselves.
pub(crate) const DIRECT_MAX_WORK: usize = 1 << 18;

/// Outputs per row up to which the dot-product loops beat a GEMM at any size.
const SKINNY: usize = 4;

/// The fused gated-NALU kernels, as a Burn backend extension. `x` is `[..., d_in]` of any rank,
/// its leading axes `members` equal blocks of rows, and each weight `[members·d_in, d_out]`:
/// `members` copies of the layer, each applied to its block of rows.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub(crate) trait FusedNalu: Backend {
    /// `y = g⊙a + (1 − g)⊙m`, `[..., d_out]`.
    fn fused_nalu(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
        members: usize,
    ) -> FloatTensor<Self>;

    /// [`FusedNalu::fused_nalu`] that also returns what the backward pass reuses, as one flat
    /// `[1, n]` tensor: `log(|x| + ε)`, `x·W`, `σ(x·G)`, `exp(log(|x| + ε)·W)`, `tanh(Ŵ)` and
    /// `σ(M̂)`.
    fn fused_nalu_with_cache(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
        members: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients `(dx, dŴ, dM̂, dG)` of the layer for the output gradient `dy`, given the
    /// forward's `cache`; `dx` is an empty `[0, d_in]` tensor unless `need_dx` (the input
    /// usually is data, with no gradient to compute), in which case it has `x`'s shape.
    #[allow(clippy::too_many_arguments)]
    fn fused_nalu_backward(
        x: FloatTensor<Self>,
        cache: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
        dy: FloatTensor<Self>,
        need_dx: bool,
        members: usize,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

/// A linear map applied member by member, `y = x·W`, as a Burn backend extension: `x` is
/// `[..., d_in]` of any rank, its leading axes `members` equal blocks of rows, and `W` is
/// `[members·d_in, d_out]`. Flex's general matrix product is slow on the skinny products of
/// the arithmetic units (`d_out` of 1 or 2) and for a population would need a reshape each way;
/// this computes each member's product with the fused layer's loops.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub(crate) trait FusedLinear: Backend {
    /// `y = x·W`, `[..., d_out]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        members: usize,
    ) -> FloatTensor<Self>;

    /// `(dx, dW)` for the output gradient `dy`; `dx` is an empty `[0, d_in]` tensor unless
    /// `need_dx`, in which case it has `x`'s shape.
    fn fused_linear_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        need_dx: bool,
        members: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The NMU product applied member by member, `z_j = Π_i (W_ij·x_i + 1 − W_ij)`, as a Burn
/// backend extension, shaped as [`FusedLinear`]. As Burn ops it is a broadcast to
/// `[rows, d_in, d_out]`, a product over `d_in` and a backward of some dozen passes over that
/// broadcast; here it is one pass forward and one backward, on tiles of rows.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub(crate) trait FusedNmu: Backend {
    /// `z = Π_i (W_ij·x_i + 1 − W_ij)`, `[..., d_out]`.
    fn fused_nmu_product(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        members: usize,
    ) -> FloatTensor<Self>;

    /// `(dx, dW)` for the output gradient `dz`; `dx` is an empty `[0, d_in]` tensor unless
    /// `need_dx`, in which case it has `x`'s shape.
    fn fused_nmu_product_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dz: FloatTensor<Self>,
        need_dx: bool,
        members: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The NMU product member by member through the fused kernels (see [`FusedNmu`]); check
/// `backend::takes_fused_path` first.
pub(crate) fn nmu_product<const D: usize>(x: Tensor<D>, w: Tensor<2>, members: usize) -> Tensor<D> {
    let (x, w) = (x.into_dispatch(), w.into_dispatch());
    let z = <burn::backend::Dispatch as FusedNmu>::fused_nmu_product(x, w, members);
    Tensor::from_dispatch(z)
}

/// `ln(max(|x|, ε))` element-wise, as a Burn backend extension: as Burn ops it is three
/// passes forward (`abs`, `clamp_min`, `log`) and four back; here one each, with the
/// vectorised `ln` of `ops::fast_math`.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub(crate) trait FusedLogAbs: Backend {
    /// `y = ln(max(|x|, ε))`, `x`'s shape.
    fn fused_clamped_log_abs(x: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self>;

    /// `dx = dy / x` where `|x| ≥ ε`, 0 elsewhere.
    fn fused_clamped_log_abs_backward(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `ln(max(|x|, ε))` through the fused kernels (see [`FusedLogAbs`]); check
/// `backend::takes_fused_path` first.
pub(crate) fn clamped_log_abs<const D: usize>(x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    let y =
        <burn::backend::Dispatch as FusedLogAbs>::fused_clamped_log_abs(x.into_dispatch(), epsilon);
    Tensor::from_dispatch(y)
}

/// `x·W` member by member through the fused kernels (see [`FusedLinear`]); check
/// `backend::takes_fused_path` first.
pub(crate) fn linear<const D: usize>(x: Tensor<D>, w: Tensor<2>, members: usize) -> Tensor<D> {
    let (x, w) = (x.into_dispatch(), w.into_dispatch());
    let y = <burn::backend::Dispatch as FusedLinear>::fused_linear(x, w, members);
    Tensor::from_dispatch(y)
}

/// The gated NALU layer through the fused kernels, for `x: [..., d_in]` (its leading axes
/// `members` blocks of rows) and weights `[members·d_in, d_out]`; check
/// `backend::takes_fused_path` first. No reshape: the kernels read the leading axes as rows.
pub(crate) fn gated_nalu<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    let x = x.into_dispatch();
    let [w_hat, m_hat, gate] = [w_hat, m_hat, gate].map(Tensor::into_dispatch);
    let y =
        <burn::backend::Dispatch as FusedNalu>::fused_nalu(x, w_hat, m_hat, gate, epsilon, members);
    Tensor::from_dispatch(y)
}

/// Frees the cache buffers the fused layer keeps between steps (see
/// [`release_buffers`](crate::release_buffers)).
pub(crate) fn release_buffers() -> usize {
    kernel::release_all()
}

/// One member's `y = x·W` on host slices (`x: [batch, d_in]`, `W: [d_in, d_out]`), through the
/// kernel of [`FusedLinear`]: the bits of that member's part of a population's fused op.
pub(crate) fn member_linear<F: FastFloat>(x: &[F], w: &[F], d_in: usize, d_out: usize) -> Vec<F> {
    kernel::linear_forward(x, w, Dims::one(x.len() / d_in, d_in, d_out))
}

/// `(dx, dW)` of [`member_linear`] for the output gradient `dy`; `dx` is empty unless `need_dx`.
pub(crate) fn member_linear_backward<F: FastFloat>(
    (x, w, dy): (&[F], &[F], &[F]),
    d_in: usize,
    d_out: usize,
    need_dx: bool,
) -> (Vec<F>, Vec<F>) {
    kernel::linear_backward(x, w, dy, Dims::one(x.len() / d_in, d_in, d_out), need_dx)
}

/// One member's NMU product on host slices, through the kernel of [`FusedNmu`].
pub(crate) fn member_nmu<F: FastFloat>(x: &[F], w: &[F], d_in: usize, d_out: usize) -> Vec<F> {
    kernel::nmu_forward(x, w, Dims::one(x.len() / d_in, d_in, d_out))
}

/// `(dx, dW)` of [`member_nmu`] for the output gradient `dz`; `dx` is empty unless `need_dx`.
pub(crate) fn member_nmu_backward<F: FastFloat>(
    (x, w, dz): (&[F], &[F], &[F]),
    d_in: usize,
    d_out: usize,
    need_dx: bool,
) -> (Vec<F>, Vec<F>) {
    kernel::nmu_backward(x, w, dz, Dims::one(x.len() / d_in, d_in, d_out), need_dx)
}

/// One member's gated NALU on host slices (`x: [batch, d_in]`, each weight `[d_in, d_out]`),
/// through the kernel of [`FusedNalu`]: `(y, cache)`, the bits of that member's part of a
/// population's fused op, and what [`member_nalu_backward`] reads.
pub(crate) fn member_nalu<F: FastFloat + Recycle>(
    x: &[F],
    [w_hat, m_hat, gate]: [&[F]; 3],
    eps: F,
    d_in: usize,
    d_out: usize,
) -> (Vec<F>, Vec<F>) {
    let d = Dims::one(x.len() / d_in, d_in, d_out);
    kernel::forward(x, w_hat, m_hat, gate, eps, d)
}

/// `(dx, [dŴ, dM̂, dG])` of [`member_nalu`] for the output gradient `dy`, from its `cache`
/// (which it overwrites); `dx` is empty unless `need_dx`.
pub(crate) fn member_nalu_backward<F: FastFloat>(
    (x, gate, dy): (&[F], &[F], &[F]),
    cache: &mut [F],
    eps: F,
    (d_in, d_out): (usize, usize),
    need_dx: bool,
) -> (Vec<F>, [Vec<F>; 3]) {
    let d = Dims::one(x.len() / d_in, d_in, d_out);
    let (dx, dw_hat, dm_hat, dg) = kernel::backward(x, cache, gate, eps, dy, d, need_dx);
    (dx, [dw_hat, dm_hat, dg])
}

/// One member's `ln(max(|x|, ε))` on host slices, through the kernel of [`FusedLogAbs`].
pub(crate) fn member_clamped_log_abs<F: FastFloat>(x: &[F], eps: F) -> Vec<F> {
    kernel::clamped_log_abs(x, eps)
}

/// The gradient of [`member_clamped_log_abs`] for the output gradient `dy`.
pub(crate) fn member_clamped_log_abs_backward<F: FastFloat>(x: &[F], dy: &[F], eps: F) -> Vec<F> {
    kernel::clamped_log_abs_backward(x, dy, eps)
}

/// `(dŴ, dM̂)` of the NAC weight `W = tanh(Ŵ)⊙σ(M̂)` for its gradient `dW`, from `t = tanh(Ŵ)`
/// and `s = σ(M̂)`: `dŴ = dW·s·(1 − t·t)`, `dM̂ = dW·t·s·(1 − s)`, multiplied left to right as
/// the fused NALU's backward and Burn's chain of `mul`, `tanh` and `sigmoid` backwards do.
pub(crate) fn nac_weight_grads<F: FastFloat>(dw: &[F], t: &[F], s: &[F]) -> (Vec<F>, Vec<F>) {
    let (mut dw_hat, mut dm_hat) = (vec![F::zero(); dw.len()], vec![F::zero(); dw.len()]);
    kernel::nac_weight_grads(dw, t, s, &mut dw_hat, &mut dm_hat);
    (dw_hat, dm_hat)
}

/// Sizes of one layer call: `members` copies, each on `batch` rows.
#[derive(Clone, Copy, Debug)]
struct Dims {
    members: usize,
    batch: usize,
    d_in: usize,
    d_out: usize,
}

impl Dims {
    /// Whether each member's matrix products go through GEMM: above [`DIRECT_MAX_WORK`]
    /// multiply-adds each, where the dot-product loops lose, unless the product is skinny
    /// (`d_out` of at most [`SKINNY`], as the arithmetic units' usually are), where the GEMM's
    /// microkernels are the slower ones.
    fn use_gemm(&self) -> bool {
        self.d_out > SKINNY && self.batch * self.d_in * self.d_out > DIRECT_MAX_WORK
    }

    /// One layer alone on `batch` rows.
    fn one(batch: usize, d_in: usize, d_out: usize) -> Self {
        Self {
            members: 1,
            batch,
            d_in,
            d_out,
        }
    }

    /// One member's sizes.
    fn member(self) -> Self {
        Self { members: 1, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    /// Output and gradients `[y, dx, dŴ, dM̂, dG]` of `Σ y²` through the fused op for
    /// `members` seeded layers of `x: [batch, d_in]` and weights `[d_in, d_out]`, in `dtype`.
    fn run(dims: [usize; 3], dtype: DType, members: usize) -> [Vec<f64>; 5] {
        let [batch, d_in, d_out] = dims;
        let device = Device::flex().autodiff();
        // Values from a local generator: the device's seeded RNG is shared by concurrent tests.
        let leaf = |shape: [usize; 2], seed, scale: f64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let values: Vec<f64> = (0..shape[0] * shape[1])
                .map(|_| rng.random_range(-scale..scale))
                .collect();
            let data = TensorData::new(values, shape);
            Tensor::<2>::from_data(data, &device)
                .cast(dtype)
                .require_grad()
        };
        let weights = [members * d_in, d_out];
        let (w_hat, m_hat) = (leaf(weights, 1, 1.5), leaf(weights, 2, 1.5));
        let (gate, x) = (leaf(weights, 3, 1.0), leaf([members * batch, d_in], 4, 2.0));
        let args = (x.clone(), w_hat.clone(), m_hat.clone(), gate.clone());
        let y = gated_nalu(args.0, args.1, args.2, args.3, 1e-7, members);
        let grads = y.clone().mul(y.clone()).sum().backward();
        let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
        [values(y), grad(&x), grad(&w_hat), grad(&m_hat), grad(&gate)]
    }

    /// Every SIMD level computes the same bits: the kernels fix their order of operations and
    /// use fused multiply-adds explicitly, so vector width changes nothing. (Run on the calling
    /// thread: small layers' passes stay on it.) Their accuracy is checked against the exact
    /// formulas in `tests/fused.rs`.
    #[test]
    fn every_simd_level_computes_the_same_bits() {
        use crate::simd::{SimdLevel, pinned};
        for (dims, members) in [([5, 7, 3], 1), ([64, 100, 2], 1), ([4, 6, 2], 3)] {
            for dtype in [DType::F32, DType::F64] {
                let scalar = pinned(SimdLevel::Scalar, || run(dims, dtype, members));
                for level in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
                    let got = pinned(level, || run(dims, dtype, members));
                    assert!(
                        got == scalar,
                        "{level} differs from scalar at {dims:?} {dtype:?}"
                    );
                }
            }
        }
    }

    /// A population of 3 computes, member by member, what each member computes alone: the
    /// same loops on the same slices, so the same bits.
    #[test]
    fn members_compute_what_they_compute_alone() {
        for dims in [[4, 6, 2], [67, 93, 45]] {
            let [batch, d_in, d_out] = dims;
            let together = run(dims, DType::F64, 3);
            let device = Device::flex().autodiff();
            for k in 0..3 {
                // Member k alone: its blocks of x and of each weight.
                let block = |v: &[f64], rows: usize, cols: usize| -> Tensor<2> {
                    let part = v[k * rows * cols..(k + 1) * rows * cols].to_vec();
                    // As in `run`: rounded to the device's f32 on creation, then cast.
                    Tensor::<2>::from_data(TensorData::new(part, [rows, cols]), &device)
                        .cast(DType::F64)
                        .require_grad()
                };
                let full = |seed, shape: [usize; 2], scale: f64| -> Vec<f64> {
                    let mut rng = StdRng::seed_from_u64(seed);
                    (0..shape[0] * shape[1])
                        .map(|_| rng.random_range(-scale..scale))
                        .collect()
                };
                let weights = [3 * d_in, d_out];
                let w_hat = block(&full(1, weights, 1.5), d_in, d_out);
                let m_hat = block(&full(2, weights, 1.5), d_in, d_out);
                let gate = block(&full(3, weights, 1.0), d_in, d_out);
                let x = block(&full(4, [3 * batch, d_in], 2.0), batch, d_in);
                let args = (x.clone(), w_hat.clone(), m_hat.clone(), gate.clone());
                let y = gated_nalu(args.0, args.1, args.2, args.3, 1e-7, 1);
                let grads = y.clone().mul(y.clone()).sum().backward();
                let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
                let alone = [values(y), grad(&x), grad(&w_hat), grad(&m_hat), grad(&gate)];
                let sizes = [
                    batch * d_out,
                    batch * d_in,
                    d_in * d_out,
                    d_in * d_out,
                    d_in * d_out,
                ];
                for ((t, a), n) in together.iter().zip(&alone).zip(sizes) {
                    assert!(t[k * n..(k + 1) * n] == a[..], "member {k} at {dims:?}");
                }
            }
        }
    }

    /// `[z, dx, dW]` of `Σ z²` through the fused NMU product of `x: [members·batch, d_in]`
    /// and `W: [members·d_in, d_out]` (row-major values) for `members` copies, in `dtype`.
    fn nmu_run(
        x: &[f64],
        w: &[f64],
        dims: [usize; 3],
        dtype: DType,
        members: usize,
    ) -> [Vec<f64>; 3] {
        let [batch, d_in, d_out] = dims;
        let device = Device::flex().autodiff();
        let leaf = |v: &[f64], shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device)
                .cast(dtype)
                .require_grad()
        };
        let (x_t, w_t) = (
            leaf(x, [members * batch, d_in]),
            leaf(w, [members * d_in, d_out]),
        );
        let z = nmu_product(x_t.clone(), w_t.clone(), members);
        let grads = z.clone().mul(z.clone()).sum().backward();
        let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
        [values(z), grad(&x_t), grad(&w_t)]
    }

    /// Inputs in `[-2, 2)` and NMU weights in `[0, 1)` for `members` copies, as f32 values.
    fn nmu_inputs(dims: [usize; 3], members: usize) -> (Vec<f64>, Vec<f64>) {
        let [batch, d_in, d_out] = dims;
        let mut rng = StdRng::seed_from_u64(7);
        let mut draw = |n, lo: f64, hi: f64| -> Vec<f64> {
            (0..n)
                .map(|_| rng.random_range(lo..hi) as f32 as f64)
                .collect()
        };
        let x = draw(members * batch * d_in, -2.0, 2.0);
        (x, draw(members * d_in * d_out, 0.0, 1.0))
    }

    /// The NMU product's lanes are fixed sequences of multiplies and adds: every SIMD level
    /// computes the same bits, and a member in a population of 3 what it computes alone.
    #[test]
    fn nmu_product_bits_are_the_same_at_every_simd_level_and_for_a_member_alone() {
        use crate::simd::{SimdLevel, pinned};
        for dims in [[5, 7, 3], [37, 100, 2], [128, 2, 1]] {
            let [batch, d_in, d_out] = dims;
            let (x, w) = nmu_inputs(dims, 3);
            for dtype in [DType::F32, DType::F64] {
                let scalar = pinned(SimdLevel::Scalar, || nmu_run(&x, &w, dims, dtype, 3));
                for level in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
                    let got = pinned(level, || nmu_run(&x, &w, dims, dtype, 3));
                    assert!(
                        got == scalar,
                        "{level} differs from scalar at {dims:?} {dtype:?}"
                    );
                }
                let sizes = [batch * d_out, batch * d_in, d_in * d_out];
                for k in 0..3 {
                    let (x_k, w_k) = (
                        &x[k * sizes[1]..][..sizes[1]],
                        &w[k * sizes[2]..][..sizes[2]],
                    );
                    let alone = nmu_run(x_k, w_k, dims, dtype, 1);
                    for ((t, a), n) in scalar.iter().zip(&alone).zip(sizes) {
                        assert!(
                            t[k * n..(k + 1) * n] == a[..],
                            "member {k} at {dims:?} {dtype:?}"
                        );
                    }
                }
            }
        }
    }

    /// `[y, dx]` of `Σ y²` for `y = ln(max(|x|, ε))`, fused or as Burn's ops.
    fn log_run(x: &[f64], dtype: DType, fused: bool) -> [Vec<f64>; 2] {
        let device = Device::flex().autodiff();
        let x_t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, x.len()]), &device)
            .cast(dtype)
            .require_grad();
        let y = match fused {
            true => clamped_log_abs(x_t.clone(), 1e-7),
            false => x_t.clone().abs().clamp_min(1e-7).log(),
        };
        let grads = y.clone().mul(y.clone()).sum().backward();
        [values(y), values(x_t.grad(&grads).unwrap())]
    }

    /// The fused clamped logarithm against Burn's `abs`, `clamp_min` and `log`, on inputs of
    /// both signs, some inside the clamp (|x| < ε, where the gradient is 0) and 0 itself. The
    /// fused gradient divides once, `dy/x`; Burn's multiplies by a reciprocal, one rounding
    /// more: so `dx` within 2 ulp (relative). In f64 both take the standard `ln`, the same
    /// bits; in f32 the vectorised `ln` is within 2 ulp of the correctly rounded value and the
    /// platform's within 1, so `y` within 3 ulp and `dx = 2y/x` within 3 + 2.
    #[test]
    fn clamped_log_abs_matches_burns_ops() {
        let mut x: Vec<f64> = (-400..400)
            .map(|i| (i as f64 * 0.0731).powi(3) as f32 as f64)
            .collect();
        x.extend([0.0, 1e-8, -5e-8, 1.0, -1.0, 3e4]);
        for (dtype, ulp, y_ulps) in [
            (DType::F64, f64::EPSILON, 0.0),
            (DType::F32, f32::EPSILON as f64, 3.0),
        ] {
            let ([y, dx], [y_ref, dx_ref]) = (log_run(&x, dtype, true), log_run(&x, dtype, false));
            for k in 0..x.len() {
                let at = format!("{dtype:?} at x = {}", x[k]);
                assert!(
                    (y[k] - y_ref[k]).abs() <= y_ulps * ulp * y_ref[k].abs(),
                    "y {at}"
                );
                let dx_ulps = y_ulps + 2.0;
                assert!(
                    (dx[k] - dx_ref[k]).abs() <= dx_ulps * ulp * dx_ref[k].abs(),
                    "dx {at}"
                );
                if x[k].abs() < 1e-7 {
                    assert_eq!(dx[k], 0.0, "the clamp's zero gradient {at}");
                }
            }
        }
    }

    /// The tests that fill or empty the process-wide buffer bin, one at a time.
    static BIN_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn recycled_cache_buffers_leave_no_trace() {
        // A cache this large goes back to the bin after the backward pass, and the next forward
        // pass of its size reuses a binned buffer as it is. Poisoned ones must change nothing.
        let _bin = BIN_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let dims = [400, 250, 100];
        let [batch, d_in, d_out] = dims;
        let len = batch * d_in + 3 * batch * d_out + 2 * d_in * d_out;
        assert!(len >= kernel::BIN_MIN_LEN);
        let fresh = run(dims, DType::F32, 1);
        for _ in 0..kernel::BIN_MAX {
            kernel::recycle(vec![f32::NAN; len]);
        }
        assert_eq!(run(dims, DType::F32, 1), fresh);
    }

    #[test]
    fn release_frees_the_kept_buffers() {
        let _bin = BIN_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let len = kernel::BIN_MIN_LEN;
        kernel::recycle(vec![0.0f32; len]);
        kernel::recycle(vec![0.0f64; len]);
        assert!(release_buffers() >= len * (4 + 8));
        assert_eq!(release_buffers(), 0, "nothing is left to free");
    }
}
