//! The NMU product's host loops: `z_j = Π_i f_ij` with `f_ij = W_ij·x_i + 1 − W_ij`, and its
//! gradients.
//!
//! A product over `d_in` factors is one chain of dependent multiplies, and a row alone waits on
//! each of them. So a member's rows go through in tiles of [`LANES`], transposed to
//! `[d_in, LANES]`, and the chains of a tile's rows advance together in vector registers (the
//! pad rows of a last, short tile hold `x = 1` and a zero output gradient). The backward pass
//! forms each factor's cofactor `Π_{k≠i} f_k` from prefix and suffix products rather than by
//! dividing `z` by `f_i`, so factors of exactly 0 are fine. Each lane is a fixed sequence of
//! multiplies and adds and the lanes' weight gradients fold in a fixed order: the same bits at
//! every SIMD level, and for a member alone or in a population.

use super::*;

/// Rows whose product chains advance together: one AVX-512 register of f32.
const LANES: usize = 16;

/// The products `[members·batch, d_out]` of `x: [members·batch, d_in]` and
/// `W: [members·d_in, d_out]`, member by member.
pub fn nmu_forward<F: FastFloat>(x: &[F], w: &[F], d: Dims) -> Vec<F> {
    let [bi, bo, io] = block_lengths(d);
    let mut z = vec![F::zero(); bo * d.members];
    per_member!(d; |x, w, z| member_forward(x, w, d.d_in, z); (x, bi), (w, io), (&mut z[..], bo));
    z
}

/// `(dx, dW)` of the products for the output gradient `dz`; `dx` is empty unless `need_dx`.
pub fn nmu_backward<F: FastFloat>(
    x: &[F],
    w: &[F],
    dz: &[F],
    d: Dims,
    need_dx: bool,
) -> (Vec<F>, Vec<F>) {
    let [bi, bo, io] = block_lengths(d);
    let mut dw = vec![F::zero(); io * d.members];
    let mut dx = Vec::new();
    if need_dx {
        dx = vec![F::zero(); x.len()];
        per_member!(d; |x, w, dz, dx, dw| member_backward(x, w, dz, d.d_in, dx, dw);
            (x, bi), (w, io), (dz, bo), (&mut dx[..], bi), (&mut dw[..], io));
    } else {
        per_member!(d; |x, w, dz, dw| member_backward(x, w, dz, d.d_in, &mut [], dw);
            (x, bi), (w, io), (dz, bo), (&mut dw[..], io));
    }
    (dx, dw)
}

/// `x`'s rows (at most [`LANES`] of `d_in` values) transposed into `tile: [d_in, LANES]`, the
/// missing rows as ones.
#[inline(always)]
fn load_tile<F: FastFloat>(x: &[F], d_in: usize, tile: &mut [F]) {
    let rows = x.len() / d_in;
    for (i, lanes) in tile.chunks_exact_mut(LANES).enumerate() {
        for (l, v) in lanes.iter_mut().enumerate() {
            *v = if l < rows { x[l * d_in + i] } else { F::one() };
        }
    }
}

/// `f = W·x + (1 − W)` for the lanes `x` of one input: the NMU's factor, in the order of its
/// reference twin (`x·W`, then `+ (1 − W)`).
#[inline(always)]
fn factors<F: FastFloat>(w: F, x: &[F]) -> [F; LANES] {
    let keep = F::one() - w;
    core::array::from_fn(|l| x[l] * w + keep)
}

simd_fn! {
    /// One member's products `z: [batch, d_out]` of `x: [batch, d_in]` and `W: [d_in, d_out]`.
    fn member_forward<F: FastFloat>(x: &[F], w: &[F], d_in: usize, z: &mut [F]) {
        let d_out = w.len() / d_in;
        let mut tile = vec![F::one(); d_in * LANES];
        for (x, z) in x.chunks(d_in * LANES).zip(z.chunks_mut(d_out * LANES)) {
            load_tile(x, d_in, &mut tile);
            for j in 0..d_out {
                let mut product = [F::one(); LANES];
                for (i, x) in tile.chunks_exact(LANES).enumerate() {
                    let f = factors(w[i * d_out + j], x);
                    for l in 0..LANES {
                        product[l] = product[l] * f[l];
                    }
                }
                for (z_row, &p) in z.chunks_mut(d_out).zip(&product) {
                    z_row[j] = p;
                }
            }
        }
    }
}

simd_fn! {
    /// One member's `dW` (and `dx` when it is not empty) for the output gradient `dz`:
    /// `dx_i = Σ_j dz_j·c_ij·W_ij` and `dW_ij = Σ_rows dz_j·c_ij·(x_i − 1)`, with the cofactor
    /// `c_ij = Π_{k<i} f_kj · Π_{k>i} f_kj`.
    fn member_backward<F: FastFloat>(
        x: &[F],
        w: &[F],
        dz: &[F],
        d_in: usize,
        dx: &mut [F],
        dw: &mut [F],
    ) {
        let d_out = w.len() / d_in;
        let need_dx = !dx.is_empty();
        let [mut tile, mut prefix, mut dx_tile] = [(); 3].map(|_| vec![F::zero(); d_in * LANES]);
        // Each lane's share of `dW`, `[d_in·d_out, LANES]`, folded over the lanes at the end.
        let mut dw_lanes = vec![F::zero(); d_in * d_out * LANES];
        let tiles = x.chunks(d_in * LANES).zip(dz.chunks(d_out * LANES));
        for (t, (x, dz)) in tiles.enumerate() {
            load_tile(x, d_in, &mut tile);
            dx_tile.fill(F::zero());
            for j in 0..d_out {
                let mut g = [F::zero(); LANES];
                for (g, dz_row) in g.iter_mut().zip(dz.chunks(d_out)) {
                    *g = dz_row[j];
                }
                let mut before = [F::one(); LANES];
                for (i, (x, p)) in tile.chunks_exact(LANES).zip(prefix.chunks_exact_mut(LANES)).enumerate() {
                    let f = factors(w[i * d_out + j], x);
                    for l in 0..LANES {
                        p[l] = before[l];
                        before[l] = before[l] * f[l];
                    }
                }
                let mut after = [F::one(); LANES];
                for i in (0..d_in).rev() {
                    let w_ij = w[i * d_out + j];
                    let at = i * LANES..(i + 1) * LANES;
                    let (x, p) = (&tile[at.clone()], &prefix[at.clone()]);
                    let (dx, dw) = (&mut dx_tile[at], &mut dw_lanes[(i * d_out + j) * LANES..][..LANES]);
                    let f = factors(w_ij, x);
                    for l in 0..LANES {
                        let grad = g[l] * (p[l] * after[l]);
                        dx[l] = dx[l] + grad * w_ij;
                        dw[l] = dw[l] + grad * (x[l] - F::one());
                        after[l] = after[l] * f[l];
                    }
                }
            }
            if need_dx {
                let rows = x.len() / d_in;
                let dx = &mut dx[t * LANES * d_in..][..rows * d_in];
                for (l, dx_row) in dx.chunks_exact_mut(d_in).enumerate() {
                    for (i, v) in dx_row.iter_mut().enumerate() {
                        *v = dx_tile[i * LANES + l];
                    }
                }
            }
        }
        for (dw, lanes) in dw.iter_mut().zip(dw_lanes.chunks_exact(LANES)) {
            *dw = lanes.iter().fold(F::zero(), |s, &v| s + v);
        }
    }
}
