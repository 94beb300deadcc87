//! The element-wise and matrix kernels of the fused layer, on host slices.
//!
//! The cache the forward pass leaves for the backward pass is one buffer, member after member;
//! each member's part holds the regions `log(|x| + ε)` (`batch·d_in` values), then `a = x·W`,
//! `g = σ(x·G)` and `m = exp(log(|x| + ε)·W)` (`batch·d_out` each), then `tanh(Ŵ)` and `σ(M̂)`
//! (`d_in·d_out` each), so the backward pass evaluates no transcendental function. A member's
//! passes run one after the other on its own part, which stays in cache; members run in order,
//! or on rayon's threads when there is enough work.

use rayon::prelude::*;

use super::Dims;
use crate::ops::fast_math::{FastFloat, simd_fn};

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

/// Buffers kept by [`Recycle`], and the smallest length worth keeping (1 MiB of f32).
pub const BIN_MAX: usize = 4;
pub const BIN_MIN_LEN: usize = 1 << 18;

mod clamped_log;
mod gated_backward;
mod gated_forward;
mod linear;
mod nmu;
mod pool;
mod products;

pub use clamped_log::{clamped_log_abs, clamped_log_abs_backward};
pub use gated_backward::backward;
pub(super) use gated_backward::nac_weight_grads;
pub use gated_forward::{forward, forward_values};
pub use linear::{linear_backward, linear_forward};
pub use nmu::{nmu_backward, nmu_forward};
use pool::take;
pub use pool::{Recycle, recycle, release_all};
use products::{View, axpy2, dot, dots, gemm, row_sums, transpose};

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
