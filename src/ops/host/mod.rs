//! The units' layers on host slices, one member at a time: the math of the lab trainer's host
//! step (`lab/src/train/host.rs`), which runs each member's forward, backward and update while
//! its batch is in cache.
//!
//! The products go through the fused ops' kernels (`ops::fused`), so a member's forward values
//! and gradients are the bits its part of a population's fused op computes. The regulariser and
//! the clamp are the units' own formulas written on slices. The NPU (`npu.rs`), the NRU and
//! NMRU (`ratio.rs`), the sNMU (`snmu.rs`) and the iNALU (`inalu.rs`) have files of their own.
//! The tests compare a host-stepped population with the generic step of Burn ops:
//! `tests/host_step.rs` to the bit in f32 (the NALU, the NACs and NAU → sNMU),
//! `tests/population.rs` to 1e-9 in f64 (every layer here).

mod inalu;
mod npu;
mod ratio;
mod snmu;

pub use inalu::Inalu;
pub use npu::Npu;
pub use ratio::{Nmru, Nru};
pub use snmu::Snmu;

use burn::tensor::Element;

use super::FastFloat;
use super::fused::{
    Recycle, member_linear, member_linear_backward, member_nalu, member_nalu_backward, member_nmu,
    member_nmu_backward, nac_weight_grads,
};

/// A layer the host step runs, with one member's sizes. Weights are `[d_in, d_out]`, row-major,
/// as one member's block of a population's stacked parameter, in the unit's visiting order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HostLayer {
    /// An NAU: `y = x·W`, `W` clamped to [−1, 1], sparsity `min(|W|, |1 − |W||)`.
    Nau { d_in: usize, d_out: usize },
    /// An NMU: `z_j = Π_i (W_ij·x_i + 1 − W_ij)`, `W` clamped to [0, 1], sparsity
    /// `min(W, 1 − W)`.
    Nmu { d_in: usize, d_out: usize },
    /// A gated NALU: `y = g⊙(x·W) + (1 − g)⊙exp(log(|x| + ε)·W)` with `W = tanh(Ŵ)⊙σ(M̂)` and
    /// `g = σ(x·G)`; weights `Ŵ, M̂, G`, no regulariser, no clamp.
    Nalu { d_in: usize, d_out: usize, eps: f64 },
    /// A NAC: `y = x·W`, `W = tanh(Ŵ)⊙σ(M̂)`; weights `Ŵ, M̂`, no regulariser, no clamp.
    Nac { d_in: usize, d_out: usize },
    /// A NAC•: `y = exp(log(|x| + ε)·W)`, `W = tanh(Ŵ)⊙σ(M̂)`; weights `Ŵ, M̂`.
    NacMul { d_in: usize, d_out: usize, eps: f64 },
    /// An NPU: `z = exp(log r·W_re − k·W_im) ⊙ cos(log r·W_im + k·W_re)` with
    /// `r = ĝ⊙(|x| + ε) + (1 − ĝ)` and `k = π·ĝ⊙[x < 0]`; weights `W_re, W_im, ĝ`, or `W_re, ĝ`
    /// for a RealNPU (`W_im = 0`, not `imaginary`). Regulariser `mean(min(|W_re|, |1 − |W_re||))
    /// + mean(|W_im|) + mean(1 − ĝ)` (the RealNPU's `OpenGates`); `ĝ` clamped to [0, 1], and
    /// `W_re` to [−1, 1] with `clamp_powers`.
    Npu(Npu),
    /// An NRU (Mistry et al.), in its training form: see [`Nru`]. Weight `W`.
    Nru(Nru),
    /// An NMRU (Mistry et al.), in its training form: see [`Nmru`]. Weight `W: [2·d_in, d_out]`.
    Nmru(Nmru),
    /// An iNALU (Schlör et al.): see [`Inalu`]. Weights `Ŵ_a, M̂_a, Ŵ_m, M̂_m, G`.
    Inalu(Inalu),
    /// An sNMU (Mistry et al.), in its training form: see [`Snmu`]. Weight `W`; the NMU's
    /// regulariser and clamp.
    Snmu(Snmu),
}

impl HostLayer {
    /// `(d_in, d_out)`.
    pub fn dims(self) -> (usize, usize) {
        match self {
            Self::Nau { d_in, d_out } | Self::Nmu { d_in, d_out } => (d_in, d_out),
            Self::Nalu { d_in, d_out, .. } | Self::NacMul { d_in, d_out, .. } => (d_in, d_out),
            Self::Nac { d_in, d_out } => (d_in, d_out),
            Self::Npu(n) => (n.d_in, n.d_out),
            Self::Nru(n) => (n.d_in, n.d_out),
            Self::Nmru(n) => (n.d_in, n.d_out),
            Self::Inalu(n) => (n.d_in, n.d_out),
            Self::Snmu(n) => (n.d_in, n.d_out),
        }
    }

    /// How many weights the layer has.
    pub fn params(self) -> usize {
        match self {
            Self::Nalu { .. } => 3,
            Self::Nac { .. } | Self::NacMul { .. } => 2,
            Self::Npu(n) => 2 + n.imaginary as usize,
            Self::Inalu(_) => 5,
            Self::Nau { .. } | Self::Nmu { .. } | Self::Nru(_) | Self::Nmru(_) | Self::Snmu(_) => 1,
        }
    }

    /// The layer's output `[rows, d_out]` for `x: [rows, d_in]` and its weights `w`, with what
    /// its backward pass reads besides them (the NALU's cache; the NAC's `tanh(Ŵ)` and `σ(M̂)`,
    /// and the NAC•'s logarithms and outputs after them; the NPU's, NRU's, NMRU's and sNMU's
    /// caches of their own forwards; empty for the others). `seed` seeds the layer's random
    /// draws in this step, if it makes any (the sNMU's noise).
    pub fn forward<F: FastFloat + Recycle + Element>(
        self,
        x: &[F],
        w: &[&[F]],
        seed: u64,
    ) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = self.dims();
        match self {
            Self::Nau { .. } => (member_linear(x, w[0], d_in, d_out), Vec::new()),
            Self::Nmu { .. } => (member_nmu(x, w[0], d_in, d_out), Vec::new()),
            Self::Nalu { eps, .. } => {
                let eps = F::from(eps).expect("a finite epsilon");
                member_nalu(x, [w[0], w[1], w[2]], eps, d_in, d_out)
            }
            Self::Nac { .. } => {
                let (weight, cache) = nac_weight(w[0], w[1]);
                (member_linear(x, &weight, d_in, d_out), cache)
            }
            Self::NacMul { eps, .. } => {
                let (weight, mut cache) = nac_weight(w[0], w[1]);
                let eps = F::from(eps).expect("a finite epsilon");
                let logs: Vec<F> = x.iter().map(|&v| (v.abs() + eps).ln()).collect();
                let y: Vec<F> = (member_linear(&logs, &weight, d_in, d_out).into_iter())
                    .map(F::exp)
                    .collect();
                cache.extend_from_slice(&logs);
                cache.extend_from_slice(&y);
                (y, cache)
            }
            Self::Npu(n) => n.forward(x, w),
            Self::Nru(n) => n.forward(x, w[0]),
            Self::Nmru(n) => n.forward(x, w[0]),
            Self::Inalu(n) => n.forward(x, w),
            Self::Snmu(n) => n.forward(x, w[0], seed),
        }
    }

    /// `(dx, dW)` for the output gradient `dy`, one gradient per weight, from the `cache` that
    /// [`forward`](Self::forward) returned (which it may overwrite); `dx` is empty unless
    /// `need_dx`.
    pub fn backward<F: FastFloat>(
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
            Self::Nac { .. } => {
                let (t, s) = cache.split_at(w[0].len());
                let weight: Vec<F> = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
                let (dx, dw) = member_linear_backward((x, &weight, dy), d_in, d_out, need_dx);
                (dx, nac_weight_backward(&dw, cache, w[1]))
            }
            Self::NacMul { eps, .. } => {
                let (t, rest) = cache.split_at(w[0].len());
                let (s, rest) = rest.split_at(t.len());
                let (logs, y) = rest.split_at(x.len());
                let weight: Vec<F> = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
                // Burn's backwards of `exp`, the product, `log`, `+ ε` and `abs`, in their order:
                // `dp = dy·y`, `dx = (dl·(1/(|x| + ε)))·sign(x)`.
                let dp: Vec<F> = dy.iter().zip(y).map(|(&g, &y)| g * y).collect();
                let (dl, dw) = member_linear_backward((logs, &weight, &dp), d_in, d_out, need_dx);
                let eps = F::from(eps).expect("a finite epsilon");
                let dx = (dl.iter().zip(x))
                    .map(|(&g, &v)| g * (F::one() / (v.abs() + eps)) * sign(v))
                    .collect();
                (dx, nac_weight_backward(&dw, cache, w[1]))
            }
            Self::Npu(n) => n.backward((x, w, dy), cache, need_dx),
            Self::Nru(n) => n.backward((x, w[0], dy), cache, need_dx),
            Self::Nmru(n) => n.backward((x, w[0], dy), cache, need_dx),
            Self::Inalu(n) => n.backward((x, w, dy), cache, need_dx),
            Self::Snmu(n) => n.backward((w[0], dy), cache, need_dx),
        }
    }

    /// The layer's sparsity regulariser over its weights `w`, adding `scale` times its gradient
    /// to their gradients `dw`: the NAU's and the NRU's (signed) and the NMU's, NMRU's and
    /// sNMU's the mean of [`sparsity`] over `W`, the NPU's its three means, the iNALU's
    /// saturation. The NALU and the NACs have none: 0, `dw` unchanged.
    pub fn regularizer<F: FastFloat>(self, w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        match self {
            Self::Nau { .. } | Self::Nru(_) => sparsity(true, w[0], scale, &mut dw[0]),
            Self::Nmu { .. } | Self::Nmru(_) | Self::Snmu(_) => {
                sparsity(false, w[0], scale, &mut dw[0])
            }
            Self::Nalu { .. } | Self::Nac { .. } | Self::NacMul { .. } => F::zero(),
            Self::Npu(n) => n.regularizer(w, scale, dw),
            Self::Inalu(_) => Inalu::regularizer(w, scale, dw),
        }
    }

    /// Clamps the layer's weights `w` to their ranges, as the unit's `clamp_weights` (the NALU,
    /// the NACs and the iNALU have none).
    pub fn clamp<F: FastFloat>(self, w: &mut [Vec<F>]) {
        let clamp = |w: &mut [F], lo: F, hi: F| w.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
        let (zero, one) = (F::zero(), F::one());
        match self {
            Self::Nau { .. } | Self::Nru(_) => clamp(&mut w[0], -one, one),
            Self::Nmu { .. } | Self::Nmru(_) | Self::Snmu(_) => clamp(&mut w[0], zero, one),
            Self::Nalu { .. } | Self::Nac { .. } | Self::NacMul { .. } | Self::Inalu(_) => {}
            Self::Npu(n) => {
                let gate = w.last_mut().expect("the gate");
                clamp(gate, zero, one);
                if n.clamp_powers {
                    clamp(&mut w[0], -one, one);
                }
            }
        }
    }
}

/// The mean of a sparsity measure over `w`, adding `scale` times its gradient to `dw`: the
/// distance to the nearest of −1, 0, 1 (`signed`, the NAU's `min(|W|, |1 − |W||)`) or of 0, 1
/// (the NMU's `min(W, 1 − W)`). At a tie of the two distances the first gets the gradient, and
/// `|·|` has gradient 0 at 0, as in Burn's `min_pair` and `abs`.
pub(super) fn sparsity<F: FastFloat>(signed: bool, w: &[F], scale: F, dw: &mut [F]) -> F {
    let n = F::from(w.len()).expect("a count");
    let (one, zero) = (F::one(), F::zero());
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

/// The NAC weight `W = tanh(Ŵ)⊙σ(M̂)` as the layers' Burn ops compute it on flex (the standard
/// library's `tanh`, and [`sigmoid`]), so that the host step takes the generic step's bits; with
/// `[tanh(Ŵ), σ(M̂)]`, which the backward reads.
pub(super) fn nac_weight<F: FastFloat>(w_hat: &[F], m_hat: &[F]) -> (Vec<F>, Vec<F>) {
    let mut cache: Vec<F> = w_hat.iter().map(|&v| v.tanh()).collect();
    cache.extend(m_hat.iter().map(|&v| sigmoid(v)));
    let (t, s) = cache.split_at(w_hat.len());
    let weight = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
    (weight, cache)
}

/// `(dŴ, dM̂)` of [`nac_weight`] for `dW`, from its cache `[t, s]` and `M̂`, as Burn's backward
/// forms them: `dŴ = dW·s·(1 − t²)`, `dM̂` the [`sigmoid_backward`] of `dW·t`.
pub(super) fn nac_weight_backward<F: FastFloat>(dw: &[F], cache: &[F], m_hat: &[F]) -> Vec<Vec<F>> {
    let (t, s) = cache.split_at(dw.len());
    let (dw_hat, mut dm_hat) = nac_weight_grads(dw, t, s);
    if is_f64::<F>() {
        for (k, d) in dm_hat.iter_mut().enumerate() {
            *d = sigmoid_backward(m_hat[k], dw[k] * t[k]);
        }
    }
    vec![dw_hat, dm_hat]
}

/// `σ(x)` as [`ops::sigmoid`](super::sigmoid) computes it on flex: flex's `1/(1 + e^−x)` (as
/// `e^x/(1 + e^x)` below 0) in f32, `½ + ½·tanh(x/2)` in f64, with the standard library's `exp`
/// and `tanh`.
pub(super) fn sigmoid<F: FastFloat>(x: F) -> F {
    let (one, half) = (F::one(), F::from(0.5).expect("½"));
    match (is_f64::<F>(), x >= F::zero()) {
        (true, _) => (x * half).tanh() * half + half,
        (false, true) => one / (one + (-x).exp()),
        (false, false) => {
            let e = x.exp();
            e / (one + e)
        }
    }
}

/// The gradient at `x` of [`sigmoid`] for the output gradient `g`, as Burn's backward forms it:
/// `g·s·(1 − s)` through flex's sigmoid, `g·½·(1 − u²)·½` with `u = tanh(x/2)` through f64's.
pub(super) fn sigmoid_backward<F: FastFloat>(x: F, g: F) -> F {
    let (one, half) = (F::one(), F::from(0.5).expect("½"));
    match is_f64::<F>() {
        true => {
            let u = (x * half).tanh();
            g * half * (one - u * u) * half
        }
        false => {
            let s = sigmoid(x);
            g * s * (one - s)
        }
    }
}

/// `sign(v)`, 0 at 0 and for NaN, as Burn's.
pub(super) fn sign<F: FastFloat>(v: F) -> F {
    if v == F::zero() || v.is_nan() {
        F::zero()
    } else {
        v.signum()
    }
}

/// Whether `F` is f64 (the only other [`FastFloat`] is f32).
fn is_f64<F: FastFloat>() -> bool {
    std::mem::size_of::<F>() == 8
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
            let mut dw = vec![vec![0.0f32; n]];
            let got = layer.regularizer(&[&w], 1.0, &mut dw);
            assert!(
                (got - want).abs() <= n as f32 * f32::EPSILON,
                "{layer:?}: {got} vs {want}"
            );
            assert_eq!(dw[0], want_grad, "{layer:?}");
        }
    }

    /// Each layer clamps to its unit's range, values inside it unchanged.
    #[test]
    fn clamp_keeps_each_unit_in_its_range() {
        let mut w = vec![vec![-1.5, -1.0, -0.2, 0.0, 0.7, 1.0, 2.0f64]];
        HostLayer::Nau { d_in: 7, d_out: 1 }.clamp(&mut w);
        assert_eq!(w[0], [-1.0, -1.0, -0.2, 0.0, 0.7, 1.0, 1.0]);
        HostLayer::Nmu { d_in: 7, d_out: 1 }.clamp(&mut w);
        assert_eq!(w[0], [0.0, 0.0, 0.0, 0.0, 0.7, 1.0, 1.0]);
    }
}
