//! The NALU layer as one fused op (forward and hand-written backward) on the flex backend.
//!
//! On small layers such as the static toy's `Nalu(100 → 2)`, a Burn op costs far more in
//! dispatch and autodiff bookkeeping (about 6 µs per op on flex) than in arithmetic, and a NALU
//! layer is some 25 ops forward and 50 backward. On large ones the generic composition makes a
//! pass over memory per element-wise op and recomputes `W`. This module computes the whole
//! gated layer over host slices, registered as a single autodiff node whose backward is
//! written out below: its own dot-product loops up to [`DIRECT_MAX_WORK`], the `gemm` crate's
//! blocked, threaded kernels above, vectorised `exp`/`tanh`/`ln` (in `ops::fast_math`) for
//! the element-wise parts. It runs on flex in f32 or f64; other backends take the generic path
//! in [`super`], whose results it matches to rounding (the tests check both against each
//! other and against finite differences). Layers whose cache passes 1 MiB keep up to four such
//! buffers between steps, to skip the page faults of fresh memory.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, backend_extension};
use burn::tensor::{DType, Tensor};

/// Largest `batch · d_in · d_out` whose matrix products the fused layer computes with its own
/// dot-product loops; above it, a GEMM's packing and threading pay for themselves.
pub const DIRECT_MAX_WORK: usize = 1 << 18;

/// The fused gated-NALU kernels, as a Burn backend extension.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait FusedNalu: Backend {
    /// `y = g⊙a + (1 − g)⊙m` for `x: [batch, d_in]` and weights `[d_in, d_out]`.
    fn fused_nalu(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
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
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients `(dx, dŴ, dM̂, dG)` of the layer for the output gradient `dy`, given the
    /// forward's `cache`; `dx` is an empty `[0, d_in]` tensor unless `need_dx` (the input
    /// usually is data, with no gradient to compute).
    fn fused_nalu_backward(
        x: FloatTensor<Self>,
        cache: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
        dy: FloatTensor<Self>,
        need_dx: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

/// The gated NALU layer through the fused kernels; check `backend::takes_fused_path` first.
pub fn gated_nalu(
    x: Tensor<2>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<2> {
    let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(Tensor::into_dispatch);
    let y = <burn::backend::Dispatch as FusedNalu>::fused_nalu(x, w_hat, m_hat, gate, epsilon);
    Tensor::from_dispatch(y)
}

/// Frees the cache buffers the fused layer keeps between steps (see [`release_buffers`](crate::release_buffers)).
pub(crate) fn release_buffers() -> usize {
    #[cfg(feature = "flex")]
    return kernels::release_all();
    #[cfg(not(feature = "flex"))]
    0
}

/// Sizes of one layer call.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
struct Dims {
    batch: usize,
    d_in: usize,
    d_out: usize,
}

#[cfg(feature = "flex")]
impl Dims {
    /// Whether the matrix products go through GEMM: above [`DIRECT_MAX_WORK`] multiply-adds
    /// each, where the dot-product loops lose.
    fn use_gemm(&self) -> bool {
        self.batch * self.d_in * self.d_out > DIRECT_MAX_WORK
    }
}

/// The element-wise and matrix kernels of the fused layer, on host slices.
///
/// The cache the forward pass leaves for the backward pass is one buffer of regions:
/// `log(|x| + ε)` (`batch·d_in` values), then `a = x·W`, `g = σ(x·G)` and
/// `m = exp(log(|x| + ε)·W)` (`batch·d_out` each), then `tanh(Ŵ)` and `σ(M̂)` (`d_in·d_out`
/// each), so the backward pass evaluates no transcendental function.
#[cfg(feature = "flex")]
mod kernels {
    use std::sync::Mutex;

    use rayon::prelude::*;

    use super::Dims;
    use crate::ops::fast_math::{FastFloat, log_abs, simd_fn};

    /// Element-wise passes over more values than this split into chunks of this size that run
    /// on rayon's threads (as the GEMMs do); smaller ones stay on the calling thread.
    const CHUNK: usize = 1 << 15;

    /// A slice cut into [`CHUNK`]-sized pieces for rayon, shared or mutable alike.
    trait ParChunks {
        type Iter: IndexedParallelIterator;
        fn chunked(self) -> Self::Iter;
    }

    impl<'a, F: Sync> ParChunks for &'a [F] {
        type Iter = rayon::slice::Chunks<'a, F>;
        fn chunked(self) -> Self::Iter {
            self.par_chunks(CHUNK)
        }
    }

    impl<'a, F: Send> ParChunks for &'a mut [F] {
        type Iter = rayon::slice::ChunksMut<'a, F>;
        fn chunked(self) -> Self::Iter {
            self.par_chunks_mut(CHUNK)
        }
    }

    /// `elementwise!(|a, b| body; x, y)` runs `body` with `a = x`, `b = y`, or, when `x` is
    /// longer than [`CHUNK`], once per matching chunk of the equal-length slices, on rayon.
    macro_rules! elementwise {
        (|$($p:ident),+| $body:expr; $first:expr $(, $rest:expr)* $(,)?) => {
            if $first.len() <= CHUNK {
                let ($($p),+) = ($first $(, $rest)*);
                $body
            } else {
                ($first.chunked() $(, $rest.chunked())*)
                    .into_par_iter()
                    .for_each(|($($p),+)| $body)
            }
        };
    }

    /// Large cache buffers the last backward passes released, for the next forward pass of the
    /// same size to reuse: the operating system hands out fresh pages one page fault per 4 KiB
    /// (27 ms for the 72 MB cache of `Nalu(1024 → 1024)` on a batch of 4096, measured here),
    /// and a training loop asks for the same sizes every step. Holds at most [`BIN_MAX`]
    /// buffers; smaller ones are left to the allocator, which recycles them itself.
    pub trait Recycle: Sized + 'static {
        fn bin() -> &'static Mutex<Vec<Vec<Self>>>;
    }

    impl Recycle for f32 {
        fn bin() -> &'static Mutex<Vec<Vec<f32>>> {
            static BIN: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
            &BIN
        }
    }

    impl Recycle for f64 {
        fn bin() -> &'static Mutex<Vec<Vec<f64>>> {
            static BIN: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
            &BIN
        }
    }

    /// Buffers kept by [`Recycle`], and the smallest length worth keeping (1 MiB of f32).
    pub const BIN_MAX: usize = 4;
    pub const BIN_MIN_LEN: usize = 1 << 18;

    /// A buffer of `len` values, recycled when one is at hand (its contents are stale: every
    /// caller overwrites all of it), zeroed otherwise.
    fn take<F: FastFloat + Recycle>(len: usize) -> Vec<F> {
        if len >= BIN_MIN_LEN {
            let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = bin.iter().position(|v| v.len() == len) {
                return bin.swap_remove(i);
            }
        }
        vec![F::zero(); len]
    }

    /// Frees every kept buffer; returns how many bytes that gives back.
    pub fn release_all() -> usize {
        fn drain<F: Recycle>() -> usize {
            let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
            let bytes = bin.iter().map(|v| v.capacity() * size_of::<F>()).sum();
            *bin = Vec::new();
            bytes
        }
        drain::<f32>() + drain::<f64>()
    }

    /// Hands a cache buffer back for [`take`] to reuse, dropping the oldest beyond [`BIN_MAX`].
    pub fn recycle<F: Recycle>(buffer: Vec<F>) {
        if buffer.len() >= BIN_MIN_LEN {
            let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
            bin.push(buffer);
            if bin.len() > BIN_MAX {
                bin.remove(0);
            }
        }
    }

    /// The cache's regions, borrowed from its one buffer.
    struct Cache<S> {
        logs: S,
        a: S,
        g: S,
        m: S,
        t: S,
        s: S,
    }

    fn lengths(d: Dims) -> [usize; 6] {
        let (bi, bo, io) = (d.batch * d.d_in, d.batch * d.d_out, d.d_in * d.d_out);
        [bi, bo, bo, bo, io, io]
    }

    macro_rules! split_regions {
        ($buf:expr, $d:expr, $split:ident) => {{
            let [l0, l1, l2, l3, l4, _] = lengths($d);
            let (logs, rest) = $buf.$split(l0);
            let (a, rest) = rest.$split(l1);
            let (g, rest) = rest.$split(l2);
            let (m, rest) = rest.$split(l3);
            let (t, s) = rest.$split(l4);
            Cache {
                logs,
                a,
                g,
                m,
                t,
                s,
            }
        }};
    }

    simd_fn! {
        /// `tanh(Ŵ)` into `t`, `σ(M̂)` into `s`, and `W = tanh(Ŵ)·σ(M̂)` into `w`.
        fn nac_weight<F: FastFloat>(w_hat: &[F], m_hat: &[F], t: &mut [F], s: &mut [F], w: &mut [F]) {
            // Equal lengths up front, so the loop has no bounds checks and vectorises.
            let n = w.len();
            let (w_hat, m_hat, t, s) = (&w_hat[..n], &m_hat[..n], &mut t[..n], &mut s[..n]);
            for i in 0..n {
                t[i] = w_hat[i].tanh_fast();
                s[i] = m_hat[i].sigmoid_fast();
                w[i] = t[i] * s[i];
            }
        }
    }

    /// `Σ_k a_k·b_k` with eight independent partial sums, so that the compiler can keep them
    /// in one SIMD register (it may not reorder a single running float sum).
    #[inline(always)]
    fn dot<F: FastFloat>(a: &[F], b: &[F]) -> F {
        let mut acc = [F::zero(); 8];
        let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: F = a8
            .remainder()
            .iter()
            .zip(b8.remainder())
            .fold(F::zero(), |s, (&x, &y)| s + x * y);
        for (ca, cb) in a8.zip(b8) {
            for k in 0..8 {
                acc[k] = acc[k] + ca[k] * cb[k];
            }
        }
        acc.iter().fold(tail, |s, &v| s + v)
    }

    /// `[rows, cols]` row-major to `[cols, rows]` row-major.
    fn transpose<F: FastFloat>(m: &[F], rows: usize, cols: usize) -> Vec<F> {
        let mut t = vec![F::zero(); rows * cols];
        for (r, row) in m.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                t[c * rows + r] = v;
            }
        }
        t
    }

    /// A matrix over a slice: element `(i, j)` at `i·rs + j·cs`.
    #[derive(Clone, Copy)]
    struct View<'a, F> {
        data: &'a [F],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    }

    impl<'a, F> View<'a, F> {
        /// `data` as a row-major `[rows, cols]` matrix.
        fn new(data: &'a [F], rows: usize, cols: usize) -> Self {
            assert_eq!(data.len(), rows * cols, "matrix data of {rows}×{cols}");
            View {
                data,
                rows,
                cols,
                rs: cols,
                cs: 1,
            }
        }

        /// The transpose, without copying.
        fn t(self) -> Self {
            View {
                rows: self.cols,
                cols: self.rows,
                rs: self.cs,
                cs: self.rs,
                ..self
            }
        }
    }

    /// `c = a·b` (or `c += a·b` with `accumulate`), `c` row-major: the `gemm` crate's blocked,
    /// threaded kernels (AVX-512 where the CPU has it), the ones flex's own matmul calls.
    fn gemm<F: FastFloat>(c: &mut [F], a: View<F>, b: View<F>, accumulate: bool) {
        assert_eq!(a.cols, b.rows, "inner dimensions of a matrix product");
        assert_eq!(c.len(), a.rows * b.cols, "output of a matrix product");
        // SAFETY: every view covers exactly its slice (`View::new`, and `t` keeps that), so
        // each element gemm addresses, (i, j) ↦ i·rs + j·cs, is inside its slice; `c` is a
        // row-major [a.rows, b.cols] buffer of its own (checked above).
        unsafe {
            gemm::gemm(
                a.rows,
                b.cols,
                a.cols,
                c.as_mut_ptr(),
                1,
                b.cols as isize,
                accumulate,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                F::one(),
                F::one(),
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
    }

    /// The pre-activations `a = x·W`, `l = log(|x| + ε)·W`, `z = x·G`, `[batch, d_out]` each:
    /// dot products on small layers, GEMMs above [`super::DIRECT_MAX_WORK`].
    #[allow(clippy::too_many_arguments)]
    fn pre_activations<F: FastFloat>(
        x: &[F],
        logs: &[F],
        w: &[F],
        gate: &[F],
        d: Dims,
        a: &mut [F],
        l: &mut [F],
        z: &mut [F],
    ) {
        if d.use_gemm() {
            let (x, logs) = (
                View::new(x, d.batch, d.d_in),
                View::new(logs, d.batch, d.d_in),
            );
            let (w, gate) = (
                View::new(w, d.d_in, d.d_out),
                View::new(gate, d.d_in, d.d_out),
            );
            gemm(a, x, w, false);
            gemm(l, logs, w, false);
            gemm(z, x, gate, false);
            return;
        }
        // Columns of W and G as contiguous rows, so every sum is a contiguous dot product.
        let (w_t, g_t) = (
            transpose(w, d.d_in, d.d_out),
            transpose(gate, d.d_in, d.d_out),
        );
        direct_products(x, logs, &w_t, &g_t, d.d_in, a, l, z);
    }

    simd_fn! {
        /// The dot products of [`pre_activations`] on small layers, given `Wᵀ` and `Gᵀ`.
        #[allow(clippy::too_many_arguments)]
        fn direct_products<F: FastFloat>(
            x: &[F], logs: &[F], w_t: &[F], g_t: &[F], d_in: usize,
            a: &mut [F], l: &mut [F], z: &mut [F],
        ) {
            let d_out = w_t.len() / d_in;
            let rows = x.chunks(d_in).zip(logs.chunks(d_in));
            let outs = a.chunks_mut(d_out).zip(l.chunks_mut(d_out)).zip(z.chunks_mut(d_out));
            for ((x_row, log_row), ((a, l), z)) in rows.zip(outs) {
                let cols = w_t.chunks(d_in).zip(g_t.chunks(d_in));
                for (j, (w_col, g_col)) in cols.enumerate() {
                    a[j] = dot(x_row, w_col);
                    l[j] = dot(log_row, w_col);
                    z[j] = dot(x_row, g_col);
                }
            }
        }
    }

    /// `(y, cache)` for the gated layer; the cache is described in the module docs.
    pub fn forward<F: FastFloat + Recycle>(
        x: &[F],
        w_hat: &[F],
        m_hat: &[F],
        gate: &[F],
        eps: F,
        d: Dims,
    ) -> (Vec<F>, Vec<F>) {
        let mut cache = take(lengths(d).iter().sum());
        let c = split_regions!(cache, d, split_at_mut);
        let mut w = vec![F::zero(); w_hat.len()];
        elementwise!(
            |wh, mh, t, s, w| nac_weight(wh, mh, t, s, w);
            w_hat, m_hat, c.t, c.s, &mut w[..]
        );
        elementwise!(|x, logs| log_abs(x, eps, logs); x, &mut *c.logs);
        // g holds z = x·G and m holds l = log(|x| + ε)·W until `mix` maps them.
        pre_activations(x, c.logs, &w, gate, d, c.a, c.m, c.g);
        let mut y = vec![F::zero(); c.a.len()];
        elementwise!(|a, g, m, y| mix(a, g, m, y); c.a, c.g, c.m, &mut y[..]);
        (y, cache)
    }

    simd_fn! {
        /// `g = σ(z)` and `m = exp(l)` in place, and `y = g·a + (1 − g)·m`.
        fn mix<F: FastFloat>(a: &[F], g: &mut [F], m: &mut [F], y: &mut [F]) {
            let n = y.len();
            let (a, g, m) = (&a[..n], &mut g[..n], &mut m[..n]);
            for k in 0..n {
                g[k] = g[k].sigmoid_fast();
                m[k] = m[k].exp_fast();
                y[k] = g[k] * a[k] + (F::one() - g[k]) * m[k];
            }
        }
    }

    /// `y += a·x + b·v` over three slices of one length (vectorises; no reductions).
    #[inline(always)]
    fn axpy2<F: FastFloat>(y: &mut [F], a: F, x: &[F], b: F, v: &[F]) {
        for ((y, &x), &v) in y.iter_mut().zip(x).zip(v) {
            *y = *y + a * x + b * v;
        }
    }

    /// The pre-activation gradients `(da, dl, dz)` as matrices.
    struct PreGrads<'a, F> {
        da: &'a [F],
        dl: &'a [F],
        dz: &'a [F],
    }

    /// `(dW, dG)` with `dW = xᵀ·da + log(|x| + ε)ᵀ·dl` and `dG = xᵀ·dz`, `[d_in, d_out]`.
    fn weight_products<F: FastFloat>(
        x: &[F],
        logs: &[F],
        p: &PreGrads<F>,
        d: Dims,
    ) -> (Vec<F>, Vec<F>) {
        let mut dw = vec![F::zero(); d.d_in * d.d_out];
        let mut dg = vec![F::zero(); d.d_in * d.d_out];
        if d.use_gemm() {
            let (x, logs) = (
                View::new(x, d.batch, d.d_in),
                View::new(logs, d.batch, d.d_in),
            );
            let grad = |g| View::new(g, d.batch, d.d_out);
            gemm(&mut dw, x.t(), grad(p.da), false);
            gemm(&mut dw, logs.t(), grad(p.dl), true);
            gemm(&mut dg, x.t(), grad(p.dz), false);
            return (dw, dg);
        }
        direct_weight_products(x, logs, p.da, p.dl, p.dz, d.d_in, &mut dw, &mut dg);
        (
            transpose(&dw, d.d_out, d.d_in),
            transpose(&dg, d.d_out, d.d_in),
        )
    }

    simd_fn! {
        /// [`weight_products`] on small layers, into the transposes `dWᵀ`, `dGᵀ` (`[d_out,
        /// d_in]`), so that each update runs along a contiguous input row.
        #[allow(clippy::too_many_arguments)]
        fn direct_weight_products<F: FastFloat>(
            x: &[F], logs: &[F], da: &[F], dl: &[F], dz: &[F], d_in: usize,
            dw_t: &mut [F], dg_t: &mut [F],
        ) {
            let d_out = dw_t.len() / d_in;
            let rows = x.chunks(d_in).zip(logs.chunks(d_in));
            for (b, (x_row, log_row)) in rows.enumerate() {
                for j in 0..d_out {
                    let (k, cols) = (b * d_out + j, j * d_in..(j + 1) * d_in);
                    axpy2(&mut dw_t[cols.clone()], da[k], x_row, dl[k], log_row);
                    axpy2(&mut dg_t[cols], dz[k], x_row, F::zero(), x_row);
                }
            }
        }
    }

    /// `dx = (da + dl·sign(x)/(|x| + ε))·Wᵀ + dz·Gᵀ`.
    fn input_grad<F: FastFloat>(
        x: &[F],
        w: &[F],
        gate: &[F],
        eps: F,
        p: &PreGrads<F>,
        d: Dims,
    ) -> Vec<F> {
        let dlog = |xi: F| xi.signum_or_zero() / (xi.abs() + eps);
        let mut dx = vec![F::zero(); x.len()];
        if d.use_gemm() {
            let (w, gate) = (
                View::new(w, d.d_in, d.d_out),
                View::new(gate, d.d_in, d.d_out),
            );
            let grad = |g| View::new(g, d.batch, d.d_out);
            let mut through_log = vec![F::zero(); x.len()];
            gemm(&mut through_log, grad(p.dl), w.t(), false);
            gemm(&mut dx, grad(p.da), w.t(), false);
            gemm(&mut dx, grad(p.dz), gate.t(), true);
            elementwise!(|dx, x, v| {
                for ((dx, &xi), &v) in dx.iter_mut().zip(x).zip(v) {
                    *dx = *dx + v * dlog(xi);
                }
            }; &mut dx[..], x, &through_log[..]);
            return dx;
        }
        for (b, (row, dx)) in x.chunks(d.d_in).zip(dx.chunks_mut(d.d_in)).enumerate() {
            let at = |m: &[F], j: usize| m[b * d.d_out + j];
            for (i, (&xi, dx)) in row.iter().zip(dx).enumerate() {
                let (dlog, k0) = (dlog(xi), i * d.d_out);
                *dx = (0..d.d_out).fold(F::zero(), |acc, j| {
                    acc + (at(p.da, j) + at(p.dl, j) * dlog) * w[k0 + j]
                        + at(p.dz, j) * gate[k0 + j]
                });
            }
        }
        dx
    }

    /// `(dx, dŴ, dM̂, dG)` by the chain rule through [`forward`], from its cache, whose
    /// `a`, `g` and `m` regions it overwrites with the pre-activation gradients; `dx` is left
    /// empty unless `need_dx`.
    #[allow(clippy::type_complexity)]
    pub fn backward<F: FastFloat>(
        x: &[F],
        cache: &mut [F],
        gate: &[F],
        eps: F,
        dy: &[F],
        d: Dims,
        need_dx: bool,
    ) -> (Vec<F>, Vec<F>, Vec<F>, Vec<F>) {
        let c = split_regions!(cache, d, split_at_mut);
        // da replaces a, dz replaces g and dl replaces m, element by element.
        let (da, dz, dl) = (c.a, c.g, c.m);
        elementwise!(
            |dy, da, dz, dl| pre_grads(dy, da, dz, dl);
            dy, &mut *da, &mut *dz, &mut *dl
        );
        let (da, dl, dz, logs, t, s) = (&*da, &*dl, &*dz, &*c.logs, &*c.t, &*c.s);
        let p = PreGrads { da, dl, dz };
        let (dw, dg) = weight_products(x, logs, &p, d);
        let dx = if need_dx {
            let w: Vec<F> = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
            input_grad(x, &w, gate, eps, &p, d)
        } else {
            Vec::new()
        };
        let (mut dw_hat, mut dm_hat) = (vec![F::zero(); dw.len()], vec![F::zero(); dw.len()]);
        elementwise!(
            |dw, t, s, dw_hat, dm_hat| nac_weight_grads(dw, t, s, dw_hat, dm_hat);
            &dw[..], t, s, &mut dw_hat[..], &mut dm_hat[..]
        );
        (dx, dw_hat, dm_hat, dg)
    }

    simd_fn! {
        /// The gradients at the pre-activations, in place of the forward values they are
        /// computed from: `a` becomes `da = dy·g`, `g` becomes `dz = dy·(a − m)·g·(1 − g)` and
        /// `m` becomes `dl = dy·(1 − g)·m` (through `m = exp(l)`).
        fn pre_grads<F: FastFloat>(dy: &[F], a: &mut [F], g: &mut [F], m: &mut [F]) {
            let n = dy.len();
            let (a, g, m) = (&mut a[..n], &mut g[..n], &mut m[..n]);
            for k in 0..n {
                let (a_k, g_k, m_k) = (a[k], g[k], m[k]);
                a[k] = dy[k] * g_k;
                g[k] = dy[k] * (a_k - m_k) * g_k * (F::one() - g_k);
                m[k] = dy[k] * (F::one() - g_k) * m_k;
            }
        }
    }

    simd_fn! {
        /// `dŴ = dW·σ(M̂)·(1 − tanh²Ŵ)` and `dM̂ = dW·tanh(Ŵ)·σ(M̂)·(1 − σ(M̂))`.
        fn nac_weight_grads<F: FastFloat>(dw: &[F], t: &[F], s: &[F], dw_hat: &mut [F], dm_hat: &mut [F]) {
            let n = dw.len();
            let (t, s, dw_hat, dm_hat) = (&t[..n], &s[..n], &mut dw_hat[..n], &mut dm_hat[..n]);
            for k in 0..n {
                let (t, s) = (t[k], s[k]);
                dw_hat[k] = dw[k] * s * (F::one() - t * t);
                dm_hat[k] = dw[k] * t * s * (F::one() - s);
            }
        }
    }

    /// `sign(x)` with `sign(0) = 0`, the derivative of `|x|` Burn uses.
    trait SignumOrZero {
        fn signum_or_zero(self) -> Self;
    }

    impl<F: FastFloat> SignumOrZero for F {
        fn signum_or_zero(self) -> Self {
            if self == F::zero() {
                F::zero()
            } else {
                self.signum()
            }
        }
    }
}

#[cfg(feature = "flex")]
mod flex {
    use super::kernels::{backward, forward, recycle};
    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::tensor::TensorData;

    /// The values of `t` as a slice, made contiguous first when they are not.
    fn contiguous(t: FlexTensor) -> FlexTensor {
        if t.is_contiguous() {
            t
        } else {
            t.to_contiguous()
        }
    }

    fn values<F: bytemuck::Pod + burn::tensor::Element>(t: &FlexTensor) -> &[F] {
        t.as_slice::<F>()
            .expect("a contiguous tensor of the layer's float type")
    }

    /// The values of a contiguous tensor as a vector; no copy when the tensor owns them alone.
    fn into_vec<F: burn::tensor::Element>(t: FlexTensor) -> Vec<F> {
        t.into_data()
            .try_into_vec::<F>()
            .expect("the fused layer's own cache, in the layer's float type")
    }

    fn tensor<F: burn::tensor::Element>(values: Vec<F>, shape: [usize; 2]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    fn dims(x: &FlexTensor, w: &FlexTensor) -> Dims {
        let (xs, ws) = (x.layout().shape(), w.layout().shape());
        Dims {
            batch: xs[0],
            d_in: xs[1],
            d_out: ws[1],
        }
    }

    macro_rules! by_dtype {
        ($dtype:expr, $f:ident => $body:expr) => {
            match $dtype {
                DType::F64 => {
                    type $f = f64;
                    $body
                }
                DType::F32 => {
                    type $f = f32;
                    $body
                }
                other => panic!("fused NALU supports f32 and f64, got {other:?}"),
            }
        };
    }

    impl FusedNalu for Flex {
        fn fused_nalu(
            x: FlexTensor,
            w_hat: FlexTensor,
            m_hat: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
        ) -> FlexTensor {
            let (y, cache) = Self::fused_nalu_with_cache(x, w_hat, m_hat, gate, epsilon);
            by_dtype!(cache.dtype(), F => recycle(into_vec::<F>(cache)));
            y
        }

        fn fused_nalu_with_cache(
            x: FlexTensor,
            w_hat: FlexTensor,
            m_hat: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
        ) -> (FlexTensor, FlexTensor) {
            let d = dims(&x, &w_hat);
            let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(contiguous);
            by_dtype!(x.dtype(), F => {
                let eps = epsilon as F;
                let (y, cache) = forward::<F>(values(&x), values(&w_hat), values(&m_hat), values(&gate), eps, d);
                let len = cache.len();
                (tensor(y, [d.batch, d.d_out]), tensor(cache, [1, len]))
            })
        }

        fn fused_nalu_backward(
            x: FlexTensor,
            cache: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
            dy: FlexTensor,
            need_dx: bool,
        ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
            let d = dims(&x, &gate);
            let [x, gate, dy] = [x, gate, dy].map(contiguous);
            by_dtype!(x.dtype(), F => {
                let eps = epsilon as F;
                let mut cache = into_vec::<F>(cache);
                let (dx, dw, dm, dg) = backward::<F>(
                    values(&x), &mut cache, values(&gate), eps, values(&dy), d, need_dx,
                );
                recycle(cache);
                let dx_rows = if need_dx { d.batch } else { 0 };
                let weights = [d.d_in, d.d_out];
                (tensor(dx, [dx_rows, d.d_in]), tensor(dw, weights), tensor(dm, weights), tensor(dg, weights))
            })
        }
    }
}

/// The autodiff node of the fused layer: its backward calls the inner backend's kernel.
#[derive(Debug)]
struct FusedNaluBackward;

impl<B: Backend + FusedNalu> Backward<B, 4> for FusedNaluBackward {
    /// The input `x`, the gate weights, the forward's cache and epsilon.
    type State = (
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        f64,
    );

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, gate, cache, eps) = ops.state;
        let need_dx = ops.parents[0].is_some();
        let (dx, dw, dm, dg) = B::fused_nalu_backward(x, cache, gate, eps, dy, need_dx);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dw, dm, dg]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FusedNalu, C: CheckpointStrategy> FusedNalu for Autodiff<B, C> {
    fn fused_nalu(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let [a, b, c, d] = [&x, &w_hat, &m_hat, &gate].map(|t| t.primitive().clone());
        match FusedNaluBackward
            .prepare::<C>([x.node(), w_hat.node(), m_hat.node(), gate.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gate) = (a.clone(), d.clone());
                let (y, cache) = B::fused_nalu_with_cache(a, b, c, d, epsilon);
                prep.finish((x, gate, cache, epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_nalu(a, b, c, d, epsilon)),
        }
    }

    fn fused_nalu_with_cache(
        _x: FloatTensor<Self>,
        _w_hat: FloatTensor<Self>,
        _m_hat: FloatTensor<Self>,
        _gate: FloatTensor<Self>,
        _epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        panic!("fused_nalu_with_cache runs on the inner backend only");
    }

    fn fused_nalu_backward(
        _x: FloatTensor<Self>,
        _cache: FloatTensor<Self>,
        _gate: FloatTensor<Self>,
        _epsilon: f64,
        _dy: FloatTensor<Self>,
        _need_dx: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        panic!("the fused NALU backward is not differentiable (no second-order gradients)");
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    /// Output and gradients `[y, dx, dŴ, dM̂, dG]` of `Σ y²` through the fused op for a seeded
    /// layer of `x: [batch, d_in]` and weights `[d_in, d_out]`, in `dtype`.
    fn run(dims: [usize; 3], dtype: DType) -> [Vec<f64>; 5] {
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
        let (w_hat, m_hat) = (leaf([d_in, d_out], 1, 1.5), leaf([d_in, d_out], 2, 1.5));
        let (gate, x) = (leaf([d_in, d_out], 3, 1.0), leaf([batch, d_in], 4, 2.0));
        let args = (x.clone(), w_hat.clone(), m_hat.clone(), gate.clone(), 1e-7);
        let y = gated_nalu(args.0, args.1, args.2, args.3, args.4);
        let grads = y.clone().mul(y.clone()).sum().backward();
        let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
        [values(y), grad(&x), grad(&w_hat), grad(&m_hat), grad(&gate)]
    }

    /// Every SIMD level computes the same bits: the kernels fix their order of operations and
    /// use fused multiply-adds explicitly, so vector width changes nothing. (Run on the
    /// calling thread: the small layers' passes stay on it.) Their accuracy is checked against
    /// the exact formulas in `tests/fused.rs`.
    #[test]
    fn every_simd_level_computes_the_same_bits() {
        use crate::simd::{SimdLevel, pinned};
        for dims in [[5, 7, 3], [64, 100, 2]] {
            for dtype in [DType::F32, DType::F64] {
                let scalar = pinned(SimdLevel::Scalar, || run(dims, dtype));
                for level in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
                    let got = pinned(level, || run(dims, dtype));
                    assert!(
                        got == scalar,
                        "{level} differs from scalar at {dims:?} {dtype:?}"
                    );
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
        assert!(len >= kernels::BIN_MIN_LEN);
        let fresh = run(dims, DType::F32);
        for _ in 0..kernels::BIN_MAX {
            kernels::recycle(vec![f32::NAN; len]);
        }
        assert_eq!(run(dims, DType::F32), fresh);
    }

    #[test]
    fn release_frees_the_kept_buffers() {
        let _bin = BIN_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let len = kernels::BIN_MIN_LEN;
        kernels::recycle(vec![0.0f32; len]);
        kernels::recycle(vec![0.0f64; len]);
        assert!(release_buffers() >= len * (4 + 8));
        assert_eq!(release_buffers(), 0, "nothing is left to free");
    }
}
