//! The units' layers on host slices, one member at a time: the math of the trainer's host step
//! (`experiments::train`), which runs each member's forward, backward and update while its
//! batch is in cache.
//!
//! The products go through the fused ops' kernels (`ops::fused`), so a member's forward values
//! and gradients are the bits its part of a population's fused op computes. The regulariser and
//! the clamp are the units' own formulas (`Nau`, `Nmu`) written on slices; the trainer's tests
//! compare a host-stepped population with the generic step of Burn ops (NAU → NMU in f64, the
//! NALU to the bit).

use super::FastFloat;
use super::fused::{
    Recycle, member_linear, member_linear_backward, member_nalu, member_nalu_backward, member_nmu,
    member_nmu_backward,
};

/// A layer the host step runs, with one member's sizes. Weights are `[d_in, d_out]`, row-major,
/// as one member's block of a population's stacked parameter, in the unit's visiting order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum HostLayer {
    /// An NAU: `y = x·W`, `W` clamped to [−1, 1], sparsity `min(|W|, |1 − |W||)`.
    Nau { d_in: usize, d_out: usize },
    /// An NMU: `z_j = Π_i (W_ij·x_i + 1 − W_ij)`, `W` clamped to [0, 1], sparsity
    /// `min(W, 1 − W)`.
    Nmu { d_in: usize, d_out: usize },
    /// A gated NALU: `y = g⊙(x·W) + (1 − g)⊙exp(log(|x| + ε)·W)` with `W = tanh(Ŵ)⊙σ(M̂)` and
    /// `g = σ(x·G)`; weights `Ŵ, M̂, G`, no regulariser, no clamp.
    Nalu { d_in: usize, d_out: usize, eps: f64 },
}

impl HostLayer {
    /// `(d_in, d_out)`.
    pub(crate) fn dims(self) -> (usize, usize) {
        match self {
            Self::Nau { d_in, d_out } | Self::Nmu { d_in, d_out } => (d_in, d_out),
            Self::Nalu { d_in, d_out, .. } => (d_in, d_out),
        }
    }

    /// How many weights the layer has.
    pub(crate) fn params(self) -> usize {
        match self {
            Self::Nalu { .. } => 3,
            Self::Nau { .. } | Self::Nmu { .. } => 1,
        }
    }

    /// The layer's output `[rows, d_out]` for `x: [rows, d_in]` and its weights `w`, with what
    /// its backward pass reads besides them (the NALU's cache; empty for the others).
    pub(crate) fn forward<F: FastFloat + Recycle>(self, x: &[F], w: &[&[F]]) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = self.dims();
        match self {
            Self::Nau { .. } => (member_linear(x, w[0], d_in, d_out), Vec::new()),
            Self::Nmu { .. } => (member_nmu(x, w[0], d_in, d_out), Vec::new()),
            Self::Nalu { eps, .. } => {
                let eps = F::from(eps).expect("a finite epsilon");
                member_nalu(x, [w[0], w[1], w[2]], eps, d_in, d_out)
            }
        }
    }

    /// `(dx, dW)` for the output gradient `dy`, one gradient per weight, from the `cache` that
    /// [`forward`](Self::forward) returned (which it may overwrite); `dx` is empty unless
    /// `need_dx`.
    pub(crate) fn backward<F: FastFloat>(
        self,
        (x, w, dy): (&[F], &[&[F]], &[F]),
        cache: &mut [F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, d_out) = self.dims();
        let one = |(dx, dw)| (dx, vec![dw]);
        match self {
            Self::Nau { .. } => one(member_linear_backward((x, w[0], dy), d_in, d_out, need_dx)),
            Self::Nmu { .. } => one(member_nmu_backward((x, w[0], dy), d_in, d_out, need_dx)),
            Self::Nalu { eps, .. } => {
                let eps = F::from(eps).expect("a finite epsilon");
                let dims = (d_in, d_out);
                let (dx, grads) = member_nalu_backward((x, w[2], dy), cache, eps, dims, need_dx);
                (dx, grads.into())
            }
        }
    }

    /// The layer's sparsity regulariser, the mean of its measure over `w`, adding `scale` times
    /// its gradient to `dw`. At a tie of the two distances the first gets the gradient, and
    /// `|·|` has gradient 0 at 0, as in Burn's `min_pair` and `abs`.
    /// The NALU has none: 0, `dw` unchanged.
    pub(crate) fn sparsity<F: FastFloat>(self, w: &[F], scale: F, dw: &mut [F]) -> F {
        let signed = match self {
            Self::Nau { .. } => true,
            Self::Nmu { .. } => false,
            Self::Nalu { .. } => return F::zero(),
        };
        let n = F::from(w.len()).expect("a count");
        let (one, zero) = (F::one(), F::zero());
        let sign = |v: F| if v == zero { zero } else { v.signum() };
        let mut sum = zero;
        for (&w, dw) in w.iter().zip(dw.iter_mut()) {
            let (value, grad) = match signed {
                true => {
                    let (abs, to_one) = (w.abs(), (one - w.abs()).abs());
                    match to_one < abs {
                        true => (to_one, -sign(one - w.abs()) * sign(w)),
                        false => (abs, sign(w)),
                    }
                }
                false => match one - w < w {
                    true => (one - w, -one),
                    false => (w, one),
                },
            };
            sum = sum + value;
            *dw = *dw + scale / n * grad;
        }
        sum / n
    }

    /// Clamps the layer's first weight `w` to its range, as the unit's `clamp_weights` (the
    /// NALU has none).
    pub(crate) fn clamp<F: FastFloat>(self, w: &mut [F]) {
        let (lo, hi) = match self {
            Self::Nau { .. } => (-F::one(), F::one()),
            Self::Nmu { .. } => (F::zero(), F::one()),
            Self::Nalu { .. } => return,
        };
        for v in w {
            *v = v.max(lo).min(hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{sparsity_to_signed_unit, sparsity_to_unit};
    use burn::tensor::{Device, Tensor, TensorData};

    /// The regulariser's value and gradient, zeros and ties of the two distances included, are
    /// those of the units' own formula through Burn's autodiff. The gradient of a mean of
    /// `n` terms is `±1/n` or 0 both ways; the value is a sum of `n` terms in another order,
    /// within `n` ulps of 1.
    #[test]
    fn sparsity_is_the_units_regulariser_with_its_gradient() {
        let nau: fn(Tensor<1>) -> Tensor<1> = sparsity_to_signed_unit;
        let nmu: fn(Tensor<1>) -> Tensor<1> = sparsity_to_unit;
        let signed = vec![-1.0, -0.75, -0.5, -0.3, 0.0, 0.25, 0.5, 0.6, 1.0f32];
        let unit = vec![0.0, 0.1, 0.25, 0.5, 0.5, 0.7, 0.9, 1.0, 1.0f32];
        let n = signed.len();
        let cases = [
            (HostLayer::Nau { d_in: n, d_out: 1 }, nau, signed),
            (HostLayer::Nmu { d_in: n, d_out: 1 }, nmu, unit),
        ];
        for (layer, formula, w) in cases {
            let device = Device::flex().autodiff();
            let t = Tensor::<1>::from_data(TensorData::new(w.clone(), [n]), &device).require_grad();
            let value = formula(t.clone()).mean();
            let grads = value.clone().backward();
            let want_grad = t
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let want = value.into_data().try_to_vec::<f32>().unwrap()[0];
            let mut dw = vec![0.0f32; n];
            let got = layer.sparsity(&w, 1.0, &mut dw);
            assert!(
                (got - want).abs() <= n as f32 * f32::EPSILON,
                "{layer:?}: {got} vs {want}"
            );
            assert_eq!(dw, want_grad, "{layer:?}");
        }
    }

    /// Each layer clamps to its unit's range, values inside it unchanged.
    #[test]
    fn clamp_keeps_each_unit_in_its_range() {
        let mut w = vec![-1.5, -1.0, -0.2, 0.0, 0.7, 1.0, 2.0f64];
        HostLayer::Nau { d_in: 7, d_out: 1 }.clamp(&mut w);
        assert_eq!(w, [-1.0, -1.0, -0.2, 0.0, 0.7, 1.0, 1.0]);
        HostLayer::Nmu { d_in: 7, d_out: 1 }.clamp(&mut w);
        assert_eq!(w, [0.0, 0.0, 0.0, 0.0, 0.7, 1.0, 1.0]);
    }
}
