//! The gated layer's (NALU's) forward loops: [`forward`], which fills the cache the backward
//! pass reads, and [`forward_values`], which keeps none.

use super::*;
use crate::ops::fast_math::log_abs;

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

/// One member's pre-activations `a = x·W`, `l = log(|x| + ε)·W`, `z = x·G`, `[batch, d_out]`
/// each: dot products on small layers, GEMMs above [`crate::ops::fused::DIRECT_MAX_WORK`].
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
