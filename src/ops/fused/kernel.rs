//! The element-wise and matrix kernels of the fused layer, on host slices.
//!
//! The cache the forward pass leaves for the backward pass is one buffer, member after member;
//! each member's part holds the regions `log(|x| + ε)` (`batch·d_in` values), then `a = x·W`,
//! `g = σ(x·G)` and `m = exp(log(|x| + ε)·W)` (`batch·d_out` each), then `tanh(Ŵ)` and `σ(M̂)`
//! (`d_in·d_out` each), so the backward pass evaluates no transcendental function. A member's
//! passes run one after the other on its own part, which stays in cache; members run in order,
//! or on rayon's threads when there is enough work.

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
    /// The process-wide pool of this element type's buffers.
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

/// The lengths of one member's cache regions.
fn lengths(d: Dims) -> [usize; 6] {
    let [bi, bo, io] = block_lengths(d);
    [bi, bo, bo, bo, io, io]
}

/// One member's block lengths: `[batch·d_in, batch·d_out, d_in·d_out]`.
fn block_lengths(d: Dims) -> [usize; 3] {
    [d.batch * d.d_in, d.batch * d.d_out, d.d_in * d.d_out]
}

/// Whether the members' products are worth spreading over rayon's threads: several members
/// whose direct products (GEMMs thread themselves) add up to at least one element-wise chunk.
fn parallel_members(d: Dims) -> bool {
    d.members > 1 && !d.use_gemm() && d.members * d.batch * d.d_in * d.d_out >= CHUNK
}

/// `per_member!(d; |a, b, …| body; (slice, len), …)` runs `body` once per member with each
/// slice cut to that member's block of `len` values: on rayon's threads when
/// [`parallel_members`], in order otherwise. Members never share a block, so the order
/// changes nothing.
macro_rules! per_member {
    ($d:expr; |$($p:ident),+| $body:expr; $(($slice:expr, $len:expr)),+ $(,)?) => {
        if parallel_members($d) {
            ($(per_member!(@par $slice, $len)),+)
                .into_par_iter()
                .for_each(|($($p),+)| $body)
        } else {
            per_member!(@seq |$($p),+| $body; $(($slice, $len)),+)
        }
    };
    (@par $slice:expr, $len:expr) => { $slice.par_chunks_len($len) };
    (@seq |$p0:ident $(, $p:ident)*| $body:expr; ($s0:expr, $l0:expr) $(, ($slice:expr, $len:expr))*) => {
        for ($p0 $(, $p)*) in multizip!($s0.chunks_len($l0) $(, $slice.chunks_len($len))*) {
            $body
        }
    };
}

/// Zips iterators into tuples `(a, b, c, …)`, flat.
macro_rules! multizip {
    ($a:expr) => {
        $a
    };
    ($a:expr, $b:expr) => {
        $a.zip($b)
    };
    ($a:expr, $b:expr, $c:expr) => {
        $a.zip($b).zip($c).map(|((a, b), c)| (a, b, c))
    };
    ($a:expr, $b:expr, $c:expr, $d:expr) => {
        $a.zip($b)
            .zip($c)
            .zip($d)
            .map(|(((a, b), c), d)| (a, b, c, d))
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        $a.zip($b)
            .zip($c)
            .zip($d)
            .zip($e)
            .map(|((((a, b), c), d), e)| (a, b, c, d, e))
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $a.zip($b)
            .zip($c)
            .zip($d)
            .zip($e)
            .zip($f)
            .map(|(((((a, b), c), d), e), f)| (a, b, c, d, e, f))
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr, $g:expr) => {
        $a.zip($b)
            .zip($c)
            .zip($d)
            .zip($e)
            .zip($f)
            .zip($g)
            .map(|((((((a, b), c), d), e), f), g)| (a, b, c, d, e, f, g))
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr, $g:expr, $h:expr) => {
        $a.zip($b)
            .zip($c)
            .zip($d)
            .zip($e)
            .zip($f)
            .zip($g)
            .zip($h)
            .map(|(((((((a, b), c), d), e), f), g), h)| (a, b, c, d, e, f, g, h))
    };
}

/// Cutting a shared or mutable slice into blocks of one length, in order or for rayon.
trait Blocks: Sized {
    type Seq: Iterator<Item = Self>;
    type Par: IndexedParallelIterator<Item = Self>;
    fn chunks_len(self, len: usize) -> Self::Seq;
    fn par_chunks_len(self, len: usize) -> Self::Par;
}

impl<'a, F: Sync> Blocks for &'a [F] {
    type Seq = std::slice::ChunksExact<'a, F>;
    type Par = rayon::slice::ChunksExact<'a, F>;
    fn chunks_len(self, len: usize) -> Self::Seq {
        self.chunks_exact(len.max(1))
    }
    fn par_chunks_len(self, len: usize) -> Self::Par {
        self.par_chunks_exact(len.max(1))
    }
}

impl<'a, F: Send> Blocks for &'a mut [F] {
    type Seq = std::slice::ChunksExactMut<'a, F>;
    type Par = rayon::slice::ChunksExactMut<'a, F>;
    fn chunks_len(self, len: usize) -> Self::Seq {
        self.chunks_exact_mut(len.max(1))
    }
    fn par_chunks_len(self, len: usize) -> Self::Par {
        self.par_chunks_exact_mut(len.max(1))
    }
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
/// in one SIMD register (it may not reorder a single running float sum): lane `k` sums
/// elements `k, k + 8, …`, then the lanes fold onto the sum of the leftover products. A fixed
/// order, the same at every SIMD level.
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

/// `J` dot products `Σ_k a_k·b_k` at once, each in [`dot`]'s order (so each equals `dot` of
/// its pair to the bit): `J` independent chains of partial sums keep the vector units busy
/// where one chain waits on each add's latency.
#[inline(always)]
fn dots<F: FastFloat, const J: usize>(pairs: [(&[F], &[F]); J]) -> [F; J] {
    let n = pairs[0].0.len();
    let blocks = n / 8;
    // Whole blocks of eight as arrays of one length, so the loop below has no bounds checks
    // and each block is one vector operation.
    let a8 = pairs.map(|(a, _)| &a[..n].as_chunks::<8>().0[..blocks]);
    let b8 = pairs.map(|(_, b)| &b[..n].as_chunks::<8>().0[..blocks]);
    let mut acc = [[F::zero(); 8]; J];
    for c in 0..blocks {
        for j in 0..J {
            let (a, b) = (&a8[j][c], &b8[j][c]);
            acc[j] = std::array::from_fn(|k| acc[j][k] + a[k] * b[k]);
        }
    }
    // A plain loop, not `array::from_fn`: the compiler left that closure out of line, compiled
    // without the caller's vector features (5% of a Madsen step in calls and bounds checks).
    let mut sums = [F::zero(); J];
    for (j, sum) in sums.iter_mut().enumerate() {
        let (a, b) = pairs[j];
        let tail = (blocks * 8..n).fold(F::zero(), |s, i| s + a[i] * b[i]);
        // Under eight terms the partial sums are all +0, and adding +0 eight times is adding
        // it once (only a −0 changes, to +0, the first time): one add instead of a chain of
        // eight, the same bits (the second layer of every stack has two inputs).
        *sum = match blocks {
            0 => tail + F::zero(),
            _ => acc[j].iter().fold(tail, |s, &v| s + v),
        };
    }
    sums
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

/// One member's pre-activations `a = x·W`, `l = log(|x| + ε)·W`, `z = x·G`, `[batch, d_out]`
/// each: dot products on small layers, GEMMs above [`super::DIRECT_MAX_WORK`].
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
            if d_out == 2 {
                // The arithmetic units' usual width: all six products of the row at once.
                let (w0, w1, g0, g1) = (&w_t[..d_in], &w_t[d_in..], &g_t[..d_in], &g_t[d_in..]);
                let [a0, a1, l0, l1, z0, z1] = dots([
                    (x_row, w0), (x_row, w1), (log_row, w0), (log_row, w1), (x_row, g0), (x_row, g1),
                ]);
                (a[0], a[1], l[0], l[1], z[0], z[1]) = (a0, a1, l0, l1, z0, z1);
                continue;
            }
            let cols = w_t.chunks(d_in).zip(g_t.chunks(d_in));
            for (j, (w_col, g_col)) in cols.enumerate() {
                [a[j], l[j], z[j]] = dots([(x_row, w_col), (log_row, w_col), (x_row, g_col)]);
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
    let ([bi, bo, io], m) = (block_lengths(d), d.member());
    let per: usize = lengths(m).iter().sum();
    let mut cache = take(per * d.members);
    let mut y = vec![F::zero(); bo * d.members];
    per_member!(d; |x, w_hat, m_hat, gate, cache, y| {
        member_forward(x, w_hat, m_hat, gate, eps, m, cache, y)
    }; (x, bi), (w_hat, io), (m_hat, io), (gate, io), (&mut cache[..], per), (&mut y[..], bo));
    (y, cache)
}

/// Rows whose logarithms and pre-activations [`forward_values`] holds at once: few enough to
/// stay in the first-level cache.
const ROWS: usize = 32;

/// `y` for the gated layer without the cache a backward pass needs (evaluation, inference).
/// Small layers take their rows in blocks of [`ROWS`], each block's `log(|x| + ε)` and
/// pre-activations in buffers that stay in cache, where [`forward`] writes a cache as large as
/// `x` (120 MB for a population of 100 evaluated on 3,000 rows each) to memory that nothing
/// reads back. The same loops on the same values, so the same `y`.
pub fn forward_values<F: FastFloat + Recycle>(
    x: &[F],
    w_hat: &[F],
    m_hat: &[F],
    gate: &[F],
    eps: F,
    d: Dims,
) -> Vec<F> {
    let ([bi, bo, io], m) = (block_lengths(d), d.member());
    if m.use_gemm() {
        let (y, cache) = forward(x, w_hat, m_hat, gate, eps, d);
        recycle(cache);
        return y;
    }
    let mut y = vec![F::zero(); bo * d.members];
    per_member!(d; |x, w_hat, m_hat, gate, y| {
        member_values(x, w_hat, m_hat, gate, eps, m, y)
    }; (x, bi), (w_hat, io), (m_hat, io), (gate, io), (&mut y[..], bo));
    y
}

/// One member's `y` for [`forward_values`], [`ROWS`] rows at a time.
fn member_values<F: FastFloat>(
    x: &[F],
    w_hat: &[F],
    m_hat: &[F],
    gate: &[F],
    eps: F,
    d: Dims,
    y: &mut [F],
) {
    let io = w_hat.len();
    let (mut t, mut s, mut w) = (
        vec![F::zero(); io],
        vec![F::zero(); io],
        vec![F::zero(); io],
    );
    nac_weight(w_hat, m_hat, &mut t, &mut s, &mut w);
    let (w_t, g_t) = (
        transpose(&w, d.d_in, d.d_out),
        transpose(gate, d.d_in, d.d_out),
    );
    let mut logs = vec![F::zero(); ROWS * d.d_in];
    let [mut a, mut l, mut z] = [(); 3].map(|_| vec![F::zero(); ROWS * d.d_out]);
    let blocks = x.chunks(ROWS * d.d_in).zip(y.chunks_mut(ROWS * d.d_out));
    for (x, y) in blocks {
        let (logs, n) = (&mut logs[..x.len()], y.len());
        let (a, l, z) = (&mut a[..n], &mut l[..n], &mut z[..n]);
        log_abs(x, eps, logs);
        direct_products(x, logs, &w_t, &g_t, d.d_in, a, l, z);
        mix(a, z, l, y);
    }
}

/// One member's forward pass into its part of the cache and its block of `y`.
#[allow(clippy::too_many_arguments)]
fn member_forward<F: FastFloat>(
    x: &[F],
    w_hat: &[F],
    m_hat: &[F],
    gate: &[F],
    eps: F,
    d: Dims,
    cache: &mut [F],
    y: &mut [F],
) {
    let c = split_regions!(cache, d, split_at_mut);
    let mut w = vec![F::zero(); w_hat.len()];
    elementwise!(
        |wh, mh, t, s, w| nac_weight(wh, mh, t, s, w);
        w_hat, m_hat, c.t, c.s, &mut w[..]
    );
    elementwise!(|x, logs| log_abs(x, eps, logs); x, &mut *c.logs);
    // g holds z = x·G and m holds l = log(|x| + ε)·W until `mix` maps them.
    pre_activations(x, c.logs, &w, gate, d, c.a, c.m, c.g);
    elementwise!(|a, g, m, y| mix(a, g, m, y); c.a, c.g, c.m, y);
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

/// One member's `(dW, dG)` with `dW = xᵀ·da + log(|x| + ε)ᵀ·dl` and `dG = xᵀ·dz`, `[d_in,
/// d_out]`, into `dw` and `dg`.
fn weight_products<F: FastFloat>(
    x: &[F],
    logs: &[F],
    p: &PreGrads<F>,
    d: Dims,
    dw: &mut [F],
    dg: &mut [F],
) {
    if d.use_gemm() {
        let (x, logs) = (
            View::new(x, d.batch, d.d_in),
            View::new(logs, d.batch, d.d_in),
        );
        let grad = |g| View::new(g, d.batch, d.d_out);
        gemm(dw, x.t(), grad(p.da), false);
        gemm(dw, logs.t(), grad(p.dl), true);
        gemm(dg, x.t(), grad(p.dz), false);
        return;
    }
    let (mut dw_t, mut dg_t) = (vec![F::zero(); dw.len()], vec![F::zero(); dg.len()]);
    direct_weight_products(x, logs, p.da, p.dl, p.dz, d.d_in, &mut dw_t, &mut dg_t);
    dw.copy_from_slice(&transpose(&dw_t, d.d_out, d.d_in));
    dg.copy_from_slice(&transpose(&dg_t, d.d_out, d.d_in));
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
        match d_out {
            1 => {
                row_sums::<F, 1, true>((x, da), (logs, dl), d_in, dw_t);
                row_sums::<F, 1, false>((x, dz), (x, dz), d_in, dg_t);
            }
            2 => {
                row_sums::<F, 2, true>((x, da), (logs, dl), d_in, dw_t);
                row_sums::<F, 2, false>((x, dz), (x, dz), d_in, dg_t);
            }
            _ => {
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
    }
}

/// Columns kept in registers at once by [`row_sums`].
const BLOCK: usize = 16;

/// `outᵀ[j, i] = Σ_b p[b, j]·u[b, i] (+ q[b, j]·v[b, i] when `TWO`)` for `J` outputs, the
/// weight gradients of a small layer (`u`, `v`: `[rows, d_in]`; `p`, `q`: `[rows, J]`):
/// [`BLOCK`] columns at a time summed over every row in registers, where adding each row into
/// the output in memory (`axpy2`) would read and write it back per row. Each sum adds the rows
/// in order, as `axpy2` row by row does, so the bits are the same.
#[inline(always)]
fn row_sums<F: FastFloat, const J: usize, const TWO: bool>(
    (u, p): (&[F], &[F]),
    (v, q): (&[F], &[F]),
    d_in: usize,
    out_t: &mut [F],
) {
    for start in (0..d_in).step_by(BLOCK) {
        let width = BLOCK.min(d_in - start);
        // A literal width lets a block compile to whole-register operations; a last block of
        // another width (4 of Madsen's 100 inputs) compiled to shuffles that cost more than the
        // full blocks together.
        let sums = match width {
            BLOCK => column_block::<F, J, TWO>((u, p), (v, q), d_in, start, BLOCK),
            8 => column_block::<F, J, TWO>((u, p), (v, q), d_in, start, 8),
            4 => column_block::<F, J, TWO>((u, p), (v, q), d_in, start, 4),
            2 => column_block::<F, J, TWO>((u, p), (v, q), d_in, start, 2),
            _ => column_block::<F, J, TWO>((u, p), (v, q), d_in, start, width),
        };
        for (j, sum) in sums.iter().enumerate() {
            out_t[j * d_in + start..][..width].copy_from_slice(&sum[..width]);
        }
    }
}

/// The sums of [`row_sums`] over columns `start..start + width`.
#[inline(always)]
fn column_block<F: FastFloat, const J: usize, const TWO: bool>(
    (u, p): (&[F], &[F]),
    (v, q): (&[F], &[F]),
    d_in: usize,
    start: usize,
    width: usize,
) -> [[F; BLOCK]; J] {
    let mut acc = [[F::zero(); BLOCK]; J];
    for (b, (p_row, q_row)) in p.chunks_exact(J).zip(q.chunks_exact(J)).enumerate() {
        let u_row = &u[b * d_in + start..][..width];
        let v_row = &v[b * d_in + start..][..width];
        for j in 0..J {
            for k in 0..width {
                acc[j][k] = acc[j][k] + p_row[j] * u_row[k];
                if TWO {
                    acc[j][k] = acc[j][k] + q_row[j] * v_row[k];
                }
            }
        }
    }
    acc
}

/// One member's `dx = (da + dl·sign(x)/(|x| + ε))·Wᵀ + dz·Gᵀ`, into `dx`.
fn input_grad<F: FastFloat>(
    x: &[F],
    w: &[F],
    gate: &[F],
    eps: F,
    p: &PreGrads<F>,
    d: Dims,
    dx: &mut [F],
) {
    let dlog = |xi: F| xi.signum_or_zero() / (xi.abs() + eps);
    if d.use_gemm() {
        let (w, gate) = (
            View::new(w, d.d_in, d.d_out),
            View::new(gate, d.d_in, d.d_out),
        );
        let grad = |g| View::new(g, d.batch, d.d_out);
        let mut through_log = vec![F::zero(); x.len()];
        gemm(&mut through_log, grad(p.dl), w.t(), false);
        gemm(dx, grad(p.da), w.t(), false);
        gemm(dx, grad(p.dz), gate.t(), true);
        elementwise!(|dx, x, v| {
            for ((dx, &xi), &v) in dx.iter_mut().zip(x).zip(v) {
                *dx = *dx + v * dlog(xi);
            }
        }; &mut *dx, x, &through_log[..]);
        return;
    }
    for (b, (row, dx)) in x.chunks(d.d_in).zip(dx.chunks_mut(d.d_in)).enumerate() {
        let at = |m: &[F], j: usize| m[b * d.d_out + j];
        for (i, (&xi, dx)) in row.iter().zip(dx).enumerate() {
            let (dlog, k0) = (dlog(xi), i * d.d_out);
            *dx = (0..d.d_out).fold(F::zero(), |acc, j| {
                acc + (at(p.da, j) + at(p.dl, j) * dlog) * w[k0 + j] + at(p.dz, j) * gate[k0 + j]
            });
        }
    }
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
    let ([bi, bo, io], m) = (block_lengths(d), d.member());
    let per: usize = lengths(m).iter().sum();
    let n = io * d.members;
    let (mut dw_hat, mut dm_hat, mut dg) =
        (vec![F::zero(); n], vec![F::zero(); n], vec![F::zero(); n]);
    let mut dx = Vec::new();
    if need_dx {
        dx = vec![F::zero(); x.len()];
        per_member!(d; |x, gate, dy, cache, dx, dw_hat, dm_hat, dg| {
            member_backward(x, gate, eps, dy, m, cache, Some(dx), [dw_hat, dm_hat, dg])
        }; (x, bi), (gate, io), (dy, bo), (&mut cache[..], per), (&mut dx[..], bi),
           (&mut dw_hat[..], io), (&mut dm_hat[..], io), (&mut dg[..], io));
    } else {
        per_member!(d; |x, gate, dy, cache, dw_hat, dm_hat, dg| {
            member_backward(x, gate, eps, dy, m, cache, None, [dw_hat, dm_hat, dg])
        }; (x, bi), (gate, io), (dy, bo), (&mut cache[..], per),
           (&mut dw_hat[..], io), (&mut dm_hat[..], io), (&mut dg[..], io));
    }
    (dx, dw_hat, dm_hat, dg)
}

/// One member's backward pass from its part of the cache into its blocks of the gradients
/// `[dŴ, dM̂, dG]` (and of `dx` when given).
#[allow(clippy::too_many_arguments)]
fn member_backward<F: FastFloat>(
    x: &[F],
    gate: &[F],
    eps: F,
    dy: &[F],
    d: Dims,
    cache: &mut [F],
    dx: Option<&mut [F]>,
    [dw_hat, dm_hat, dg]: [&mut [F]; 3],
) {
    let c = split_regions!(cache, d, split_at_mut);
    // da replaces a, dz replaces g and dl replaces m, element by element.
    let (da, dz, dl) = (c.a, c.g, c.m);
    elementwise!(
        |dy, da, dz, dl| pre_grads(dy, da, dz, dl);
        dy, &mut *da, &mut *dz, &mut *dl
    );
    let (da, dl, dz, logs, t, s) = (&*da, &*dl, &*dz, &*c.logs, &*c.t, &*c.s);
    let p = PreGrads { da, dl, dz };
    let mut dw = vec![F::zero(); t.len()];
    weight_products(x, logs, &p, d, &mut dw, dg);
    if let Some(dx) = dx {
        let w: Vec<F> = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
        input_grad(x, &w, gate, eps, &p, d, dx);
    }
    elementwise!(
        |dw, t, s, dw_hat, dm_hat| nac_weight_grads(dw, t, s, dw_hat, dm_hat);
        &dw[..], t, s, dw_hat, dm_hat
    );
}

/// `y = x·W` member by member, for `x: [members·batch, d_in]` and `w: [members·d_in, d_out]`:
/// dot products on small products, GEMMs above [`super::DIRECT_MAX_WORK`].
pub fn linear_forward<F: FastFloat>(x: &[F], w: &[F], d: Dims) -> Vec<F> {
    let ([bi, bo, io], m) = (block_lengths(d), d.member());
    let mut y = vec![F::zero(); bo * d.members];
    per_member!(d; |x, w, y| {
        if m.use_gemm() {
            let (x, w) = (View::new(x, m.batch, m.d_in), View::new(w, m.d_in, m.d_out));
            gemm(y, x, w, false);
        } else {
            direct_linear(x, &transpose(w, m.d_in, m.d_out), m.d_in, y);
        }
    }; (x, bi), (w, io), (&mut y[..], bo));
    y
}

simd_fn! {
    /// One member's `y = x·W` on a small layer, given `Wᵀ`.
    fn direct_linear<F: FastFloat>(x: &[F], w_t: &[F], d_in: usize, y: &mut [F]) {
        let d_out = w_t.len() / d_in;
        let one_row = |x_row: &[F], y_row: &mut [F]| {
            for (y, w_col) in y_row.iter_mut().zip(w_t.chunks(d_in)) {
                *y = dot(x_row, w_col);
            }
        };
        // Four products at once, over as many rows as that takes for the skinny outputs.
        let rows_at_once = match d_out {
            1 => 4,
            2 => 2,
            _ => 1,
        };
        let mut x_blocks = x.chunks_exact(d_in * rows_at_once);
        let mut y_blocks = y.chunks_exact_mut(d_out * rows_at_once);
        for (xb, yb) in (&mut x_blocks).zip(&mut y_blocks) {
            match d_out {
                1 => {
                    let r = |i: usize| &xb[i * d_in..(i + 1) * d_in];
                    let yv = dots([(r(0), w_t), (r(1), w_t), (r(2), w_t), (r(3), w_t)]);
                    yb.copy_from_slice(&yv);
                }
                2 => {
                    let (r0, r1) = xb.split_at(d_in);
                    let (w0, w1) = w_t.split_at(d_in);
                    let yv = dots([(r0, w0), (r0, w1), (r1, w0), (r1, w1)]);
                    yb.copy_from_slice(&yv);
                }
                _ => one_row(xb, yb),
            }
        }
        let (x_rest, y_rest) = (x_blocks.remainder(), y_blocks.into_remainder());
        for (x_row, y_row) in x_rest.chunks(d_in).zip(y_rest.chunks_mut(d_out)) {
            one_row(x_row, y_row);
        }
    }
}

/// `(dx, dW)` of `y = x·W` for the output gradient `dy`, member by member: `dW = xᵀ·dy`,
/// `dx = dy·Wᵀ` (left empty unless `need_dx`).
pub fn linear_backward<F: FastFloat>(
    x: &[F],
    w: &[F],
    dy: &[F],
    d: Dims,
    need_dx: bool,
) -> (Vec<F>, Vec<F>) {
    let ([bi, bo, io], m) = (block_lengths(d), d.member());
    let mut dw = vec![F::zero(); io * d.members];
    per_member!(d; |x, dy, dw| {
        if m.use_gemm() {
            let (x, dy) = (View::new(x, m.batch, m.d_in), View::new(dy, m.batch, m.d_out));
            gemm(dw, x.t(), dy, false);
        } else {
            let mut dw_t = vec![F::zero(); dw.len()];
            direct_linear_weights(x, dy, m.d_in, &mut dw_t);
            dw.copy_from_slice(&transpose(&dw_t, m.d_out, m.d_in));
        }
    }; (x, bi), (dy, bo), (&mut dw[..], io));
    let mut dx = Vec::new();
    if need_dx {
        dx = vec![F::zero(); x.len()];
        per_member!(d; |w, dy, dx| {
            let (dy, w) = (View::new(dy, m.batch, m.d_out), View::new(w, m.d_in, m.d_out));
            if m.use_gemm() {
                gemm(dx, dy, w.t(), false);
            } else {
                direct_linear_inputs(dy.data, w.data, m.d_out, dx);
            }
        }; (w, io), (dy, bo), (&mut dx[..], bi));
    }
    (dx, dw)
}

simd_fn! {
    /// One member's `dWᵀ = dyᵀ·x` (`[d_out, d_in]`) on a small layer, row by row of `x`.
    fn direct_linear_weights<F: FastFloat>(x: &[F], dy: &[F], d_in: usize, dw_t: &mut [F]) {
        let d_out = dw_t.len() / d_in;
        match d_out {
            1 => row_sums::<F, 1, false>((x, dy), (x, dy), d_in, dw_t),
            2 => row_sums::<F, 2, false>((x, dy), (x, dy), d_in, dw_t),
            _ => {
                for (x_row, dy_row) in x.chunks(d_in).zip(dy.chunks(d_out)) {
                    for (dw_row, &g) in dw_t.chunks_mut(d_in).zip(dy_row) {
                        axpy2(dw_row, g, x_row, F::zero(), x_row);
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// One member's `dx = dy·Wᵀ` on a small layer.
    fn direct_linear_inputs<F: FastFloat>(dy: &[F], w: &[F], d_out: usize, dx: &mut [F]) {
        match d_out {
            1 => inputs_of::<F, 1>(dy, w, dx),
            2 => inputs_of::<F, 2>(dy, w, dx),
            _ => {
                let d_in = w.len() / d_out;
                for (dy_row, dx_row) in dy.chunks(d_out).zip(dx.chunks_mut(d_in)) {
                    for (dx, w_row) in dx_row.iter_mut().zip(w.chunks(d_out)) {
                        *dx = dy_row.iter().zip(w_row).fold(F::zero(), |s, (&g, &v)| s + g * v);
                    }
                }
            }
        }
    }
}

/// [`direct_linear_inputs`] for a literal `D` outputs (the skinny layers' 1 and 2): each sum in
/// the same order, from 0, as whole arrays the compiler keeps in registers.
#[inline(always)]
fn inputs_of<F: FastFloat, const D: usize>(dy: &[F], w: &[F], dx: &mut [F]) {
    let d_in = w.len() / D;
    let (w, _) = w.as_chunks::<D>();
    let (dy, _) = dy.as_chunks::<D>();
    for (g, dx_row) in dy.iter().zip(dx.chunks_exact_mut(d_in)) {
        for (dx, w_row) in dx_row.iter_mut().zip(&w[..d_in]) {
            *dx = (0..D).fold(F::zero(), |s, j| s + g[j] * w_row[j]);
        }
    }
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
    pub(super) fn nac_weight_grads<F: FastFloat>(dw: &[F], t: &[F], s: &[F], dw_hat: &mut [F], dm_hat: &mut [F]) {
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

simd_fn! {
    /// `out = ln(max(|x|, ε))` (a NaN stays NaN, as in Burn's `clamp_min`).
    fn clamped_log_abs_values<F: FastFloat>(x: &[F], eps: F, out: &mut [F]) {
        for (o, &v) in out.iter_mut().zip(x) {
            let a = v.abs();
            *o = (if a < eps { eps } else { a }).ln_fast();
        }
    }
}

simd_fn! {
    /// `dx = dy / x` where `|x| ≥ ε` (the derivative of `ln|x|`), 0 where the clamp holds.
    fn clamped_log_abs_grads<F: FastFloat>(x: &[F], dy: &[F], eps: F, dx: &mut [F]) {
        let n = dx.len();
        let (x, dy) = (&x[..n], &dy[..n]);
        for k in 0..n {
            dx[k] = if x[k].abs() < eps { F::zero() } else { dy[k] / x[k] };
        }
    }
}

/// `ln(max(|x|, ε))`, element-wise, on rayon's threads for large inputs.
pub fn clamped_log_abs<F: FastFloat>(x: &[F], eps: F) -> Vec<F> {
    let mut y = vec![F::zero(); x.len()];
    elementwise!(|x, y| clamped_log_abs_values(x, eps, y); x, &mut y[..]);
    y
}

/// The gradient of [`clamped_log_abs`] for the output gradient `dy`.
pub fn clamped_log_abs_backward<F: FastFloat>(x: &[F], dy: &[F], eps: F) -> Vec<F> {
    let mut dx = vec![F::zero(); x.len()];
    elementwise!(|x, dy, dx| clamped_log_abs_grads(x, dy, eps, dx); x, dy, &mut dx[..]);
    dx
}

mod nmu;
pub use nmu::{nmu_backward, nmu_forward};

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in `[-2, 2)` from a fixed integer sequence (no generator needed).
    fn values(n: usize, salt: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| {
                let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
                (h >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
            })
            .collect()
    }

    /// Sizes that cover the skinny paths (one and two outputs), the general one (three), rows
    /// that fill no whole block of [`ROWS`] or of the four-row products, inputs that fill no
    /// whole block of eight or of [`BLOCK`], and several members.
    fn sizes() -> [Dims; 5] {
        [
            (1, 37, 23, 1),
            (1, 70, 100, 2),
            (3, 5, 9, 2),
            (2, 33, 17, 3),
            (4, 66, 8, 1),
        ]
        .map(|(members, batch, d_in, d_out)| Dims {
            members,
            batch,
            d_in,
            d_out,
        })
    }

    #[test]
    fn dots_equal_dot_one_by_one() {
        for n in [0, 3, 8, 21, 100] {
            let (a, b, c) = (values(n, 1), values(n, 2), values(n, 3));
            let together = dots([(&a[..], &b[..]), (&a[..], &c[..]), (&b[..], &c[..])]);
            assert_eq!(together, [dot(&a, &b), dot(&a, &c), dot(&b, &c)], "n = {n}");
        }
    }

    /// The cache-free forward pass computes the `y` of the pass that keeps the cache, to the bit.
    #[test]
    fn forward_values_is_forward_without_its_cache() {
        for d in sizes() {
            let Dims {
                members,
                batch,
                d_in,
                d_out,
            } = d;
            let x = values(members * batch * d_in, 4);
            let [w_hat, m_hat, gate] = [5, 6, 7].map(|s| values(members * d_in * d_out, s));
            let (y, _) = forward(&x, &w_hat, &m_hat, &gate, 1e-7, d);
            let y_values = forward_values(&x, &w_hat, &m_hat, &gate, 1e-7, d);
            assert_eq!(y, y_values, "{d:?}");
        }
    }

    /// The skinny products (several rows or columns at once, weight sums in registers) equal
    /// plain loops in the same order of operations: row-by-row dot products and weight
    /// gradients added one row at a time.
    #[test]
    fn skinny_products_equal_their_plain_loops() {
        for d in sizes() {
            let Dims {
                members,
                batch,
                d_in,
                d_out,
            } = d;
            let x = values(members * batch * d_in, 8);
            let w = values(members * d_in * d_out, 9);
            let dy = values(members * batch * d_out, 10);
            let (y, (_, dw)) = (
                linear_forward(&x, &w, d),
                linear_backward(&x, &w, &dy, d, false),
            );
            for k in 0..members {
                let x = &x[k * batch * d_in..(k + 1) * batch * d_in];
                let w_t = transpose(&w[k * d_in * d_out..(k + 1) * d_in * d_out], d_in, d_out);
                let dy = &dy[k * batch * d_out..(k + 1) * batch * d_out];
                for (b, row) in x.chunks(d_in).enumerate() {
                    for (j, col) in w_t.chunks(d_in).enumerate() {
                        assert_eq!(y[(k * batch + b) * d_out + j], dot(row, col), "{d:?}");
                    }
                }
                let mut dw_t = vec![0.0; d_in * d_out];
                for (row, g) in x.chunks(d_in).zip(dy.chunks(d_out)) {
                    for (j, &g) in g.iter().enumerate() {
                        axpy2(&mut dw_t[j * d_in..(j + 1) * d_in], g, row, 0.0, row);
                    }
                }
                let dw_k = &dw[k * d_in * d_out..(k + 1) * d_in * d_out];
                assert_eq!(dw_k, &transpose(&dw_t, d_out, d_in)[..], "{d:?}");
            }
        }
    }
}
