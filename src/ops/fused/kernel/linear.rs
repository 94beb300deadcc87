//! The plain matrix product `y = x·W` of the NAC and linear layers, forward and backward, on
//! small layers by dot products and on large ones by GEMMs.

use super::*;

/// `y = x·W` member by member, for `x: [members·batch, d_in]` and `w: [members·d_in, d_out]`:
/// dot products on small products, GEMMs above [`crate::ops::fused::DIRECT_MAX_WORK`].
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
