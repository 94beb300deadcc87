//! The gated layer's (NALU's) backward loops: [`backward`] by the chain rule from the cache
//! [`forward`] leaves, and the NAC weights' gradients ([`nac_weight_grads`]).

use super::*;

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
    pub(in crate::ops::fused) fn nac_weight_grads<F: FastFloat>(dw: &[F], t: &[F], s: &[F], dw_hat: &mut [F], dm_hat: &mut [F]) {
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
