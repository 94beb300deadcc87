//! The iNALU on one member's host slices (Schlör, Ring & Hotho 2020): the forward, backward and
//! regulariser of [`HostLayer::Inalu`](super::HostLayer::Inalu).

use super::{nac_weight, nac_weight_backward, sigmoid, sigmoid_backward, sign};
use crate::ops::FastFloat;
use crate::ops::fused::{
    member_clamped_log_abs, member_clamped_log_abs_backward, member_linear, member_linear_backward,
    member_nmu, member_nmu_backward,
};

/// An iNALU's sizes and constants: `y = g⊙a + (1 − g)⊙m⊙s` with `a = x·W_a`,
/// `m = exp(min(log(max(|x|, ε))·W_m, ω))`, `s = clip(Π_i (sign(x_i)·|W_m,ij| + 1 − |W_m,ij|),
/// −1, 1)`, `g = σ(G)`, each `W = tanh(Ŵ)⊙σ(M̂)`; weights `Ŵ_a, M̂_a, Ŵ_m, M̂_m, G` (`G: [d_out]`),
/// the saturation regulariser, no clamp (see `crate::Inalu`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inalu {
    pub d_in: usize,
    pub d_out: usize,
    pub eps: f64,
    pub omega: f64,
}

/// One member's forward values that the backward reads, each `[rows, d_out]` but the logs.
struct Cache<'a, F> {
    add: &'a [F],
    mul: &'a [F],
    a: &'a [F],
    logs: &'a [F],
    p: &'a [F],
    m: &'a [F],
    s: &'a [F],
}

impl Inalu {
    /// `(y, cache)` for `x: [rows, d_in]` and the weights `w`; the cache holds both NAC weights'
    /// `[tanh(Ŵ), σ(M̂)]`, then `a`, `log(max(|x|, ε))`, the log-space sum `p`, `m` and `s`.
    pub(super) fn forward<F: FastFloat>(self, x: &[F], w: &[&[F]]) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let (one, omega) = (F::one(), F::from(self.omega).expect("a finite ω"));
        let (w_a, mut cache) = nac_weight(w[0], w[1]);
        let (w_m, cache_m) = nac_weight(w[2], w[3]);
        cache.extend_from_slice(&cache_m);
        let a = member_linear(x, &w_a, d_in, d_out);
        let logs = member_clamped_log_abs(x, F::from(self.eps).expect("a finite ε"));
        let p = member_linear(&logs, &w_m, d_in, d_out);
        let m: Vec<F> = p.iter().map(|&p| p.min(omega).exp()).collect();
        let s = self.sign_product(x, &w_m);
        let g: Vec<F> = w[4].iter().map(|&v| sigmoid(v)).collect();
        let y = (a.iter().zip(&m).zip(&s).zip(g.iter().cycle()))
            .map(|(((&a, &m), &s), &g)| g * a + (one - g) * (m * s))
            .collect();
        for part in [&a, &logs, &p, &m, &s] {
            cache.extend_from_slice(part);
        }
        (y, cache)
    }

    /// The forward's cache in its parts, for weights of `n` entries and `x` of `inputs`.
    fn parts<F>(cache: &[F], n: usize, inputs: usize) -> Cache<'_, F> {
        let (add, rest) = cache.split_at(2 * n);
        let (mul, rest) = rest.split_at(2 * n);
        let outputs = (rest.len() - inputs) / 4;
        let (a, rest) = rest.split_at(outputs);
        let (logs, rest) = rest.split_at(inputs);
        let (p, rest) = rest.split_at(outputs);
        let (m, s) = rest.split_at(outputs);
        Cache {
            add,
            mul,
            a,
            logs,
            p,
            m,
            s,
        }
    }

    /// `(dx, [dŴ_a, dM̂_a, dŴ_m, dM̂_m, dG])` for the output gradient `dy`, from the forward's
    /// cache, through Burn's backward formulas: the gated mix, `exp` (its gradient 0 where the
    /// cap `ω` holds), both products, the sign product (the signs have no gradient) and
    /// `log(max(|x|, ε))` (0 below `ε`).
    pub(super) fn backward<F: FastFloat>(
        self,
        (x, w, dy): (&[F], &[&[F]], &[F]),
        cache: &[F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let (one, zero) = (F::one(), F::zero());
        let omega = F::from(self.omega).expect("a finite ω");
        let c = Self::parts(cache, w[0].len(), x.len());
        let (t_a, s_a) = c.add.split_at(w[0].len());
        let (t_m, s_m) = c.mul.split_at(w[0].len());
        let w_a: Vec<F> = t_a.iter().zip(s_a).map(|(&t, &s)| t * s).collect();
        let w_m: Vec<F> = t_m.iter().zip(s_m).map(|(&t, &s)| t * s).collect();
        let g: Vec<F> = w[4].iter().map(|&v| sigmoid(v)).collect();
        // y = g·a + (1 − g)·(m·s): each factor's gradient, and g's summed over the rows.
        let rows = dy.len() / d_out;
        let (mut d_a, mut d_m, mut d_s) = (
            vec![zero; dy.len()],
            vec![zero; dy.len()],
            vec![zero; dy.len()],
        );
        let (mut through_a, mut through_ms) = (vec![zero; d_out], vec![zero; d_out]);
        for k in 0..rows * d_out {
            let j = k % d_out;
            let ms = c.m[k] * c.s[k];
            let d_ms = dy[k] * (one - g[j]);
            d_a[k] = dy[k] * g[j];
            through_a[j] = through_a[j] + dy[k] * c.a[k];
            through_ms[j] = through_ms[j] + dy[k] * ms;
            d_m[k] = d_ms * c.s[k];
            d_s[k] = d_ms * c.m[k];
        }
        let d_gate = (w[4].iter().zip(through_a).zip(through_ms))
            .map(|((&v, a), ms)| sigmoid_backward(v, a - ms))
            .collect();
        // m = exp(min(p, ω)).
        let d_p: Vec<F> = (d_m.iter().zip(c.m).zip(c.p))
            .map(|((&g, &m), &p)| if p <= omega { g * m } else { zero })
            .collect();
        let (d_logs, dw_log) = member_linear_backward((c.logs, &w_m, &d_p), d_in, d_out, need_dx);
        let dw_abs = self.sign_product_backward(x, &w_m, &d_s);
        let dw_m: Vec<F> = (dw_log.iter().zip(&dw_abs).zip(&w_m))
            .map(|((&l, &a), &w)| l + a * sign(w))
            .collect();
        let (dx_a, dw_a) = member_linear_backward((x, &w_a, &d_a), d_in, d_out, need_dx);
        let dx = match need_dx {
            true => {
                let eps = F::from(self.eps).expect("a finite ε");
                let dx_log = member_clamped_log_abs_backward(x, &d_logs, eps);
                dx_a.iter().zip(dx_log).map(|(&a, l)| a + l).collect()
            }
            false => Vec::new(),
        };
        let mut grads = nac_weight_backward(&dw_a, c.add, w[1]);
        grads.extend(nac_weight_backward(&dw_m, c.mul, w[3]));
        grads.push(d_gate);
        (dx, grads)
    }

    /// `s = clip(Π_i (sign(x_i)·|W_m,ij| + 1 − |W_m,ij|), −1, 1)` for `x: [rows, d_in]`.
    ///
    /// Where every input is positive, each factor is `|W|·1 + (1 − |W|)`, exactly 1 in floating
    /// point for `|W| ≤ 1` (`1 − |W|` is exact from ½ up, and below it the sum's one rounding
    /// lands on 1), so `s` is exactly 1 without the product over `d_in` factors: the same bits
    /// as the NMU kernel's. Madsen & Johansen's inputs are all positive, and this product over
    /// their 100 inputs, forward and backward, was 43% of an iNALU run's profile.
    fn sign_product<F: FastFloat>(self, x: &[F], w_m: &[F]) -> Vec<F> {
        let one = F::one();
        let rows = x.len() / self.d_in;
        if x.iter().all(|&v| v > F::zero()) {
            return vec![one; rows * self.d_out];
        }
        let (signs, w_abs) = Self::sign_factors(x, w_m);
        let s = member_nmu(&signs, &w_abs, self.d_in, self.d_out);
        s.into_iter().map(|v| v.max(-one).min(one)).collect()
    }

    /// `d|W_m|` of [`Self::sign_product`] for its output gradient `d_s` (the clip never binds:
    /// each factor lies in `[−1, 1]`). Each factor's gradient holds `sign(x_i) − 1`, exactly
    /// 0 for a positive input, so with every input positive it is exactly 0, as the kernel's
    /// sums of `+0` are.
    fn sign_product_backward<F: FastFloat>(self, x: &[F], w_m: &[F], d_s: &[F]) -> Vec<F> {
        if x.iter().all(|&v| v > F::zero()) {
            return vec![F::zero(); w_m.len()];
        }
        let (signs, w_abs) = Self::sign_factors(x, w_m);
        member_nmu_backward((&signs, &w_abs, d_s), self.d_in, self.d_out, false).1
    }

    /// The NMU product's inputs and weights for the sign: `sign(x)` and `|W_m|`.
    fn sign_factors<F: FastFloat>(x: &[F], w_m: &[F]) -> (Vec<F>, Vec<F>) {
        (
            x.iter().map(|&v| sign(v)).collect(),
            w_m.iter().map(|v| v.abs()).collect(),
        )
    }

    /// `Σ_p mean(max(t − |p|, 0)) / t` over the five weights (`t` = 20), adding `scale` times
    /// its gradient `−sign(p)/(n·t)` where `|p| ≤ t` to `dw`.
    pub(super) fn regularizer<F: FastFloat>(w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        let t = F::from(crate::ops::INALU_REGULARIZER_THRESHOLD).expect("a threshold");
        let mut total = F::zero();
        for (w, dw) in w.iter().zip(dw.iter_mut()) {
            let n = F::from(w.len()).expect("a count");
            let mut sum = F::zero();
            for (&v, d) in w.iter().zip(dw.iter_mut()) {
                let inside = t - v.abs();
                if inside >= F::zero() {
                    sum = sum + inside;
                    *d = *d - scale / n / t * sign(v);
                }
            }
            total = total + sum / n;
        }
        total / t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// With every input positive the shortcut of [`Inalu::sign_product`] and its backward give
    /// the NMU kernel's bits: each factor `|W|·1 + (1 − |W|)` rounds to exactly 1 for any
    /// `|W| ≤ 1`, so the product is 1 and each weight gradient a sum of `+0`. The weights cover
    /// `[0, 1]` with the cases where `1 − |W|` rounds (below ½, down to the tiniest), ½ and 1.
    #[test]
    fn positive_inputs_skip_the_sign_product_with_the_kernels_bits() {
        fn check<F: FastFloat>(x: &[F], w_m: &[F], d_s: &[F], unit: Inalu) {
            let (signs, w_abs) = Inalu::sign_factors(x, w_m);
            let kernel = member_nmu(&signs, &w_abs, unit.d_in, unit.d_out);
            let (_, kernel_dw) =
                member_nmu_backward((&signs, &w_abs, d_s), unit.d_in, unit.d_out, false);
            let bits = |v: &[F]| {
                v.iter()
                    .map(|v| v.to_f64().unwrap().to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&unit.sign_product(x, w_m)), bits(&kernel));
            assert_eq!(
                bits(&unit.sign_product_backward(x, w_m, d_s)),
                bits(&kernel_dw)
            );
        }
        let unit = Inalu {
            d_in: 100,
            d_out: 3,
            eps: 1e-7,
            omega: 20.0,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut w: Vec<f64> = (0..unit.d_in * unit.d_out)
            .map(|k| match k % 4 {
                0 => rng.random_range(0.0..1.0),
                1 => rng.random_range(0.0..0.5),
                2 => rng.random_range(0.0..1e-6),
                _ => -rng.random_range(0.0..1.0),
            })
            .collect();
        w[..4].copy_from_slice(&[0.0, 0.5, 1.0, -1.0]);
        let x: Vec<f64> = (0..64 * unit.d_in)
            .map(|_| rng.random_range(1e-3..6.0))
            .collect();
        let d_s: Vec<f64> = (0..64 * unit.d_out)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        check(&x, &w, &d_s, unit);
        let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
        check(&f32s(&x), &f32s(&w), &f32s(&d_s), unit);
    }
}
