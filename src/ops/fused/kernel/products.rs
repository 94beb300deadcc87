//! The dot products, transposes and matrix products (`gemm`) the kernels share: the arithmetic
//! of [`super::linear`], [`super::gated_forward`] and [`super::gated_backward`], kept apart.

use super::*;

/// `Σ_k a_k·b_k` with eight independent partial sums, so that the compiler can keep them
/// in one SIMD register (it may not reorder a single running float sum): lane `k` sums
/// elements `k, k + 8, …`, then the lanes fold onto the sum of the leftover products. A fixed
/// order, the same at every SIMD level.
#[inline(always)]
pub(super) fn dot<F: FastFloat>(a: &[F], b: &[F]) -> F {
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
pub(super) fn dots<F: FastFloat, const J: usize>(pairs: [(&[F], &[F]); J]) -> [F; J] {
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
pub(super) fn transpose<F: FastFloat>(m: &[F], rows: usize, cols: usize) -> Vec<F> {
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
pub(super) struct View<'a, F> {
    pub(super) data: &'a [F],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, F> View<'a, F> {
    /// `data` as a row-major `[rows, cols]` matrix.
    pub(super) fn new(data: &'a [F], rows: usize, cols: usize) -> Self {
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
    pub(super) fn t(self) -> Self {
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
pub(super) fn gemm<F: FastFloat>(c: &mut [F], a: View<F>, b: View<F>, accumulate: bool) {
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

/// `y += a·x + b·v` over three slices of one length (vectorises; no reductions).
#[inline(always)]
pub(super) fn axpy2<F: FastFloat>(y: &mut [F], a: F, x: &[F], b: F, v: &[F]) {
    for ((y, &x), &v) in y.iter_mut().zip(x).zip(v) {
        *y = *y + a * x + b * v;
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
pub(super) fn row_sums<F: FastFloat, const J: usize, const TWO: bool>(
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
