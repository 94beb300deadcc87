//! The NPU and RealNPU on one member's host slices (Heim et al. 2020): the forward, backward and
//! regulariser of [`HostLayer::Npu`](super::HostLayer::Npu).

use super::sign;
use super::sparsity;
use crate::ops::FastFloat;
use crate::ops::fused::{member_linear, member_linear_backward};

/// The sizes and settings of an NPU or RealNPU host layer ([`HostLayer::Npu`](super::HostLayer::Npu)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Npu {
    pub d_in: usize,
    pub d_out: usize,
    pub eps: f64,
    pub imaginary: bool,
    pub clamp_powers: bool,
}

impl Npu {
    /// `(z, cache)` for `x: [rows, d_in]` and the weights `w` (`W_re, [W_im,] ĝ`); the cache holds
    /// `log r`, `r`, `exp(magnitude)` and the phase, in that order. The products go through the
    /// fused linear kernel, as the generic path's do.
    pub(super) fn forward<F: FastFloat>(self, x: &[F], w: &[&[F]]) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let (w_re, gate) = (w[0], *w.last().expect("the gate"));
        let eps = F::from(self.eps).expect("a finite epsilon");
        let one = F::one();
        let r: Vec<F> = (x.iter().zip(gate.iter().cycle()))
            .map(|(&v, &g)| (v.abs() + eps) * g + (one - g))
            .collect();
        let logs: Vec<F> = r.iter().map(|&r| r.ln()).collect();
        let k = self.phases(x, gate);
        let mm = |a: &[F], w: &[F]| member_linear(a, w, d_in, d_out);
        let (magnitude, phase) = match self.imaginary {
            true => {
                let (re, im) = (mm(&logs, w_re), mm(&logs, w[1]));
                let magnitude = re.iter().zip(mm(&k, w[1])).map(|(&a, b)| a - b).collect();
                let phase = im.iter().zip(mm(&k, w_re)).map(|(&a, b)| a + b).collect();
                (magnitude, phase)
            }
            false => (mm(&logs, w_re), mm(&k, w_re)),
        };
        let e: Vec<F> = magnitude.into_iter().map(F::exp).collect::<Vec<F>>();
        let z = e.iter().zip(&phase).map(|(&e, &p)| e * p.cos()).collect();
        let mut cache = logs;
        cache.extend_from_slice(&r);
        cache.extend_from_slice(&e);
        cache.extend_from_slice(&phase);
        (z, cache)
    }

    /// `k = π·ĝ⊙[x < 0]`, row by row.
    fn phases<F: FastFloat>(self, x: &[F], gate: &[F]) -> Vec<F> {
        let pi = F::from(core::f64::consts::PI).expect("π");
        (x.iter().zip(gate.iter().cycle()))
            .map(|(&v, &g)| if v < F::zero() { g * pi } else { F::zero() })
            .collect()
    }

    /// `(dx, [dW_re, (dW_im,) dĝ])` for the output gradient `dz`, from [`Npu::forward`]'s cache.
    pub(super) fn backward<F: FastFloat>(
        self,
        (x, w, dz): (&[F], &[&[F]], &[F]),
        cache: &[F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let (w_re, gate) = (w[0], *w.last().expect("the gate"));
        let (logs, rest) = cache.split_at(x.len());
        let (r, rest) = rest.split_at(x.len());
        let (e, phase) = rest.split_at(dz.len());
        let k = self.phases(x, gate);
        // z = e·cos(phase): d magnitude = dz·cos(phase)·e, d phase = −dz·e·sin(phase).
        let d_mag: Vec<F> = (dz.iter().zip(e).zip(phase))
            .map(|((&g, &e), &p)| g * p.cos() * e)
            .collect();
        let d_phase: Vec<F> = (dz.iter().zip(e).zip(phase))
            .map(|((&g, &e), &p)| -(g * e * p.sin()))
            .collect();
        let back =
            |a: &[F], w: &[F], dy: &[F]| member_linear_backward((a, w, dy), d_in, d_out, true);
        let add = |a: Vec<F>, b: Vec<F>| a.iter().zip(b).map(|(&a, b)| a + b).collect::<Vec<F>>();
        let (d_logs, d_k, mut grads) = match self.imaginary {
            true => {
                let w_im = w[1];
                let neg: Vec<F> = d_mag.iter().map(|&g| -g).collect();
                let (dl_re, dw_re_l) = back(logs, w_re, &d_mag);
                let (dk_im, dw_im_k) = back(&k, w_im, &neg);
                let (dl_im, dw_im_l) = back(logs, w_im, &d_phase);
                let (dk_re, dw_re_k) = back(&k, w_re, &d_phase);
                let grads = vec![add(dw_re_l, dw_re_k), add(dw_im_k, dw_im_l)];
                (add(dl_re, dl_im), add(dk_im, dk_re), grads)
            }
            false => {
                let (dl, dw_l) = back(logs, w_re, &d_mag);
                let (dk, dw_k) = back(&k, w_re, &d_phase);
                (dl, dk, vec![add(dw_l, dw_k)])
            }
        };
        // r = ĝ·(|x| + ε) + (1 − ĝ), k = π·ĝ·[x < 0]: dĝ = Σ_rows dr·(|x| + ε − 1) + dk·π·[x < 0].
        let eps = F::from(self.eps).expect("a finite epsilon");
        let pi = F::from(core::f64::consts::PI).expect("π");
        let d_r: Vec<F> = d_logs.iter().zip(r).map(|(&g, &r)| g / r).collect();
        let mut d_gate = vec![F::zero(); d_in];
        for ((row, dr), dk) in x.chunks(d_in).zip(d_r.chunks(d_in)).zip(d_k.chunks(d_in)) {
            for i in 0..d_in {
                let from_k = if row[i] < F::zero() {
                    dk[i] * pi
                } else {
                    F::zero()
                };
                d_gate[i] = d_gate[i] + dr[i] * (row[i].abs() + eps) - dr[i] + from_k;
            }
        }
        grads.push(d_gate);
        let dx = match need_dx {
            true => (x.iter().zip(&d_r).zip(gate.iter().cycle()))
                .map(|((&v, &dr), &g)| dr * g * sign(v))
                .collect(),
            false => Vec::new(),
        };
        (dx, grads)
    }

    /// `mean(min(|W_re|, |1 − |W_re||)) + mean(|W_im|) + mean(1 − ĝ)`, adding `scale` times its
    /// gradient to `dw`.
    pub(super) fn regularizer<F: FastFloat>(self, w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        let mut value = sparsity(true, w[0], scale, &mut dw[0]);
        if self.imaginary {
            let n = F::from(w[1].len()).expect("a count");
            let mut sum = F::zero();
            for (&v, d) in w[1].iter().zip(dw[1].iter_mut()) {
                sum = sum + v.abs();
                *d = *d + scale / n * sign(v);
            }
            value = value + sum / n;
        }
        let (gate, d_gate) = (w[w.len() - 1], dw.last_mut().expect("the gate"));
        let n = F::from(gate.len()).expect("a count");
        let closure = gate.iter().fold(F::zero(), |s, &g| s + (F::one() - g));
        d_gate.iter_mut().for_each(|d| *d = *d - scale / n);
        value + closure / n
    }
}
