//! The NRU and the NMRU on one member's host slices (Mistry, Farrahi & Hare's division units),
//! in their training forms: the forward, backward and regulariser of [`HostLayer::Nru`] and
//! [`HostLayer::Nmru`](super::HostLayer::Nmru).
//!
//! [`HostLayer::Nru`]: super::HostLayer::Nru

use super::sign;
use crate::ops::FastFloat;
use crate::ops::fused::{member_linear, member_linear_backward, member_nmu, member_nmu_backward};

/// An NRU's sizes: `z_j = Π_i f_ij` with `f_ij = sign(x_i)·|x_i|^{W_ij}·s_ij + (1 − s_ij)`,
/// `s = tanh(1000·W)²` (the training form; `|x|` floored at `Nru::TINY` inside the power),
/// `W` clamped to [−1, 1], the NAU's sparsity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nru {
    pub d_in: usize,
    pub d_out: usize,
}

impl Nru {
    /// The floor of `|x|` in `log |x|`, as `crate::Nru`'s.
    const TINY: f64 = 1e-30;

    /// `(z, factors)`: the output `[rows, d_out]` and each row's factors `f_ij`, which the
    /// backward reads.
    pub(super) fn forward<F: FastFloat>(self, x: &[F], w: &[F]) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let select = select(w);
        let tiny = F::from(Self::TINY).expect("a float");
        let mut factors = Vec::with_capacity(x.len() * d_out);
        for row in x.chunks(d_in) {
            for (i, &v) in row.iter().enumerate() {
                let log = v.abs().max(tiny).ln();
                for j in 0..d_out {
                    let (w, s) = (w[i * d_out + j], select[i * d_out + j]);
                    factors.push(sign(v) * (log * w).exp() * s + (F::one() - s));
                }
            }
        }
        (products(&factors, d_in * d_out, d_out), factors)
    }

    /// `(dx, [dW])` for the output gradient `dz`, from the forward's factors.
    pub(super) fn backward<F: FastFloat>(
        self,
        (x, w, dz): (&[F], &[F], &[F]),
        factors: &[F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let one = F::one();
        let (thousand, tiny) = (
            F::from(1000.0).expect("1000"),
            F::from(Self::TINY).expect("ε"),
        );
        let select = select(w);
        // ∂L/∂W = Σ_rows g·sign(x)·power·log|x|·s + (Σ_rows g·(sign(x)·power − 1))·∂s/∂W, with
        // g = dz·(the other factors): the selector's sum over the rows first, as Burn's
        // broadcast does, since ∂s/∂W (up to 1000) multiplies its rounding.
        let (mut through_power, mut through_select) =
            (vec![F::zero(); w.len()], vec![F::zero(); w.len()]);
        let mut dx = vec![F::zero(); if need_dx { x.len() } else { 0 }];
        let rows = x
            .chunks(d_in)
            .zip(factors.chunks(d_in * d_out))
            .zip(dz.chunks(d_out));
        for (r, ((row, f), dz)) in rows.enumerate() {
            let cof = cofactors(f, d_out);
            for (i, &v) in row.iter().enumerate() {
                let (abs, log) = (v.abs(), v.abs().max(tiny).ln());
                for (j, &dz) in dz.iter().enumerate() {
                    let k = i * d_out + j;
                    let s = select[k];
                    let power = (log * w[k]).exp();
                    let g = dz * cof[k];
                    through_power[k] = through_power[k] + g * sign(v) * power * log * s;
                    through_select[k] = through_select[k] + g * (sign(v) * power - one);
                    if need_dx && abs >= tiny {
                        // ∂f/∂x = s·power·W/|x| (the sign's derivative is 0).
                        dx[r * d_in + i] = dx[r * d_in + i] + g * s * power * w[k] / abs;
                    }
                }
            }
        }
        // ∂s/∂W = 2t·(1 − t²)·1000 with t = tanh(1000·W).
        let dw = (w.iter().zip(through_power).zip(through_select))
            .map(|((&w, p), g)| {
                let t = (w * thousand).tanh();
                p + (g * t + g * t) * (one - t * t) * thousand
            })
            .collect();
        (dx, vec![dw])
    }
}

/// An NMRU's sizes: `z_j = Π_i (W_ij·|x'_i| + 1 − W_ij) · cos(π·Σ_i [x'_i < 0]·W_ij)` over
/// `x' = [x, 1/(x + ε)]` (the training form), `W: [2·d_in, d_out]` clamped to [0, 1], the NMU's
/// sparsity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nmru {
    pub d_in: usize,
    pub d_out: usize,
    pub eps: f64,
}

impl Nmru {
    /// `(z, cache)`: the output and `[|x'|, π·[x' < 0], the products, the angles]`.
    pub(super) fn forward<F: FastFloat>(self, x: &[F], w: &[F]) -> (Vec<F>, Vec<F>) {
        let (features, d_out) = (2 * self.d_in, self.d_out);
        let wide = self.features(x);
        let abs: Vec<F> = wide.iter().map(|v| v.abs()).collect();
        let pi = F::from(core::f64::consts::PI).expect("π");
        let negative: Vec<F> = (wide.iter())
            .map(|&v| if v < F::zero() { pi } else { F::zero() })
            .collect();
        let product = member_nmu(&abs, w, features, d_out);
        let angle = member_linear(&negative, w, features, d_out);
        let z = product
            .iter()
            .zip(&angle)
            .map(|(&m, a)| m * a.cos())
            .collect();
        let mut cache = abs;
        cache.extend_from_slice(&negative);
        cache.extend_from_slice(&product);
        cache.extend_from_slice(&angle);
        (z, cache)
    }

    /// Each row's `[x, 1/(x + ε)]`.
    fn features<F: FastFloat>(self, x: &[F]) -> Vec<F> {
        let eps = F::from(self.eps).expect("a finite epsilon");
        let mut wide = Vec::with_capacity(2 * x.len());
        for row in x.chunks(self.d_in) {
            wide.extend_from_slice(row);
            wide.extend(row.iter().map(|&v| F::one() / (v + eps)));
        }
        wide
    }

    /// `(dx, [dW])` for the output gradient `dz`, from the forward's cache.
    pub(super) fn backward<F: FastFloat>(
        self,
        (x, w, dz): (&[F], &[F], &[F]),
        cache: &[F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, features, d_out) = (self.d_in, 2 * self.d_in, self.d_out);
        let (abs, rest) = cache.split_at(x.len() * 2);
        let (negative, rest) = rest.split_at(abs.len());
        let (product, angle) = rest.split_at(dz.len());
        let d_product: Vec<F> = dz.iter().zip(angle).map(|(&g, a)| g * a.cos()).collect();
        let d_angle: Vec<F> = (dz.iter().zip(product).zip(angle))
            .map(|((&g, &m), a)| -(g * m * a.sin()))
            .collect();
        let (d_abs, dw_product) = member_nmu_backward((abs, w, &d_product), features, d_out, true);
        let (_, dw_angle) = member_linear_backward((negative, w, &d_angle), features, d_out, false);
        let dw = dw_product
            .iter()
            .zip(dw_angle)
            .map(|(&a, b)| a + b)
            .collect();
        let mut dx = Vec::new();
        if need_dx {
            let eps = F::from(self.eps).expect("a finite epsilon");
            let wide = self.features(x);
            for ((row, d), w) in x
                .chunks(d_in)
                .zip(d_abs.chunks(features))
                .zip(wide.chunks(features))
            {
                for (i, &v) in row.iter().enumerate() {
                    // |x'| backward: ·sign(x'); 1/(x + ε) backward: ·(−1/(x + ε)²).
                    let recip = -(F::one() / ((v + eps) * (v + eps)));
                    dx.push(d[i] * sign(w[i]) + d[d_in + i] * sign(w[d_in + i]) * recip);
                }
            }
        }
        (dx, vec![dw])
    }
}

/// `tanh(1000·W)²`, the NRU's training selector.
fn select<F: FastFloat>(w: &[F]) -> Vec<F> {
    let thousand = F::from(1000.0).expect("1000");
    w.iter()
        .map(|&v| {
            let t = (v * thousand).tanh();
            t * t
        })
        .collect()
}

/// Each row's `Π_i f_ij`, from factors laid out `[rows, d_in, d_out]` (`per_row` each).
fn products<F: FastFloat>(factors: &[F], per_row: usize, d_out: usize) -> Vec<F> {
    let mut z = Vec::with_capacity(factors.len() / per_row * d_out);
    for f in factors.chunks(per_row) {
        z.extend((0..d_out).map(|j| {
            f.iter()
                .skip(j)
                .step_by(d_out)
                .fold(F::one(), |p, &v| p * v)
        }));
    }
    z
}

/// One row's cofactors `Π_{k≠i} f_kj` (layout `[d_in, d_out]`), from prefix and suffix
/// products, without dividing (a factor of exactly 0 is fine).
fn cofactors<F: FastFloat>(f: &[F], d_out: usize) -> Vec<F> {
    let d_in = f.len() / d_out;
    let mut cof = vec![F::one(); f.len()];
    for j in 0..d_out {
        let mut prefix = F::one();
        for i in 0..d_in {
            cof[i * d_out + j] = prefix;
            prefix = prefix * f[i * d_out + j];
        }
        let mut suffix = F::one();
        for i in (0..d_in).rev() {
            cof[i * d_out + j] = cof[i * d_out + j] * suffix;
            suffix = suffix * f[i * d_out + j];
        }
    }
    cof
}
