//! `ln(max(|x|, ε))` element-wise and its gradient, the fused log-abs op's loops.

use super::*;

simd_fn! {
    /// `out = ln(max(|x|, ε))` (a NaN stays NaN, as in Burn's `clamp_min`).
    fn clamped_log_abs_values<F: FastFloat>(x: &[F], eps: F, out: &mut [F]) {
        for (o, &v) in out.iter_mut().zip(x) {
            let a = v.abs();
            *o = (if a < eps { eps } else { a }).ln_fast();
        }
    }
}

simd_fn! {
    /// `dx = dy / x` where `|x| ≥ ε` (the derivative of `ln|x|`), 0 where the clamp holds.
    fn clamped_log_abs_grads<F: FastFloat>(x: &[F], dy: &[F], eps: F, dx: &mut [F]) {
        let n = dx.len();
        let (x, dy) = (&x[..n], &dy[..n]);
        for k in 0..n {
            dx[k] = if x[k].abs() < eps { F::zero() } else { dy[k] / x[k] };
        }
    }
}

/// `ln(max(|x|, ε))`, element-wise, on rayon's threads for large inputs.
pub fn clamped_log_abs<F: FastFloat>(x: &[F], eps: F) -> Vec<F> {
    let mut y = vec![F::zero(); x.len()];
    elementwise!(|x, y| clamped_log_abs_values(x, eps, y); x, &mut y[..]);
    y
}

/// The gradient of [`clamped_log_abs`] for the output gradient `dy`.
pub fn clamped_log_abs_backward<F: FastFloat>(x: &[F], dy: &[F], eps: F) -> Vec<F> {
    let mut dx = vec![F::zero(); x.len()];
    elementwise!(|x, dy, dx| clamped_log_abs_grads(x, dy, eps, dx); x, dy, &mut dx[..]);
    dx
}
