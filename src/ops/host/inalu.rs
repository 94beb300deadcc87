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
pub(crate) struct Inalu {
    pub(crate) d_in: usize,
    pub(crate) d_out: usize,
    pub(crate) eps: f64,
    pub(crate) omega: f64,
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
        let signs: Vec<F> = x.iter().map(|&v| sign(v)).collect();
        let w_abs: Vec<F> = w_m.iter().map(|v| v.abs()).collect();
        let s: Vec<F> = (member_nmu(&signs, &w_abs, d_in, d_out).into_iter())
            .map(|v| v.max(-one).min(one))
            .collect();
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
        let signs: Vec<F> = x.iter().map(|&v| sign(v)).collect();
        let w_abs: Vec<F> = w_m.iter().map(|v| v.abs()).collect();
        let (_, dw_abs) = member_nmu_backward((&signs, &w_abs, &d_s), d_in, d_out, false);
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

    /// `Σ_p mean(max(t − |p|, 0)) / t` over the five weights (`t` = 20), adding `scale` times
    /// its gradient `−sign(p)/(n·t)` where `|p| ≤ t` to `dw`.
    pub(super) fn regularizer<F: FastFloat>(w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        let t = F::from(crate::inalu::REGULARIZER_THRESHOLD).expect("a threshold");
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
