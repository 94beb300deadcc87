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
    member_nmu_backward, nac_weight_grads,
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
}

/// The sizes and settings of an NPU or RealNPU host layer ([`HostLayer::Npu`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Npu {
    pub(crate) d_in: usize,
    pub(crate) d_out: usize,
    pub(crate) eps: f64,
    pub(crate) imaginary: bool,
    pub(crate) clamp_powers: bool,
}

impl HostLayer {
    /// `(d_in, d_out)`.
    pub(crate) fn dims(self) -> (usize, usize) {
        match self {
            Self::Nau { d_in, d_out } | Self::Nmu { d_in, d_out } => (d_in, d_out),
            Self::Nalu { d_in, d_out, .. } | Self::NacMul { d_in, d_out, .. } => (d_in, d_out),
            Self::Nac { d_in, d_out } => (d_in, d_out),
            Self::Npu(n) => (n.d_in, n.d_out),
        }
    }

    /// How many weights the layer has.
    pub(crate) fn params(self) -> usize {
        match self {
            Self::Nalu { .. } => 3,
            Self::Nac { .. } | Self::NacMul { .. } => 2,
            Self::Npu(n) => 2 + n.imaginary as usize,
            Self::Nau { .. } | Self::Nmu { .. } => 1,
        }
    }

    /// The layer's output `[rows, d_out]` for `x: [rows, d_in]` and its weights `w`, with what
    /// its backward pass reads besides them (the NALU's cache; the NAC's `tanh(Ŵ)` and `σ(M̂)`,
    /// and the NAC•'s logarithms and outputs after them; the NPU's [`Npu::forward`] cache;
    /// empty for the others).
    pub(crate) fn forward<F: FastFloat + Recycle>(self, x: &[F], w: &[&[F]]) -> (Vec<F>, Vec<F>) {
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
                let sign = |v: F| if v == F::zero() || v.is_nan() { F::zero() } else { v.signum() };
                let dx = (dl.iter().zip(x))
                    .map(|(&g, &v)| g * (F::one() / (v.abs() + eps)) * sign(v))
                    .collect();
                (dx, nac_weight_backward(&dw, cache, w[1]))
            }
            Self::Npu(n) => n.backward((x, w, dy), cache, need_dx),
        }
    }

    /// The layer's sparsity regulariser over its weights `w`, adding `scale` times its gradient
    /// to their gradients `dw`: the NAU's and the NMU's the mean of [`sparsity`] over `W`, the
    /// NPU's its three means. The NALU and the NACs have none: 0, `dw` unchanged.
    pub(crate) fn regularizer<F: FastFloat>(self, w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        match self {
            Self::Nau { .. } => sparsity(true, w[0], scale, &mut dw[0]),
            Self::Nmu { .. } => sparsity(false, w[0], scale, &mut dw[0]),
            Self::Nalu { .. } | Self::Nac { .. } | Self::NacMul { .. } => F::zero(),
            Self::Npu(n) => n.regularizer(w, scale, dw),
        }
    }

    /// Clamps the layer's weights `w` to their ranges, as the unit's `clamp_weights` (the NALU
    /// and the NACs have none).
    pub(crate) fn clamp<F: FastFloat>(self, w: &mut [Vec<F>]) {
        let clamp = |w: &mut [F], lo: F, hi: F| w.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
        let (zero, one) = (F::zero(), F::one());
        match self {
            Self::Nau { .. } => clamp(&mut w[0], -one, one),
            Self::Nmu { .. } => clamp(&mut w[0], zero, one),
            Self::Nalu { .. } | Self::Nac { .. } | Self::NacMul { .. } => {}
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
fn sparsity<F: FastFloat>(signed: bool, w: &[F], scale: F, dw: &mut [F]) -> F {
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

impl Npu {
    /// `(z, cache)` for `x: [rows, d_in]` and the weights `w` (`W_re, [W_im,] ĝ`); the cache holds
    /// `log r`, `r`, `exp(magnitude)` and the phase, in that order. The products go through the
    /// fused linear kernel, as the generic path's do.
    fn forward<F: FastFloat>(self, x: &[F], w: &[&[F]]) -> (Vec<F>, Vec<F>) {
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
    fn backward<F: FastFloat>(
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
        let back = |a: &[F], w: &[F], dy: &[F]| {
            member_linear_backward((a, w, dy), d_in, d_out, true)
        };
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
                let from_k = if row[i] < F::zero() { dk[i] * pi } else { F::zero() };
                d_gate[i] = d_gate[i] + dr[i] * (row[i].abs() + eps) - dr[i] + from_k;
            }
        }
        grads.push(d_gate);
        let sign = |v: F| if v == F::zero() || v.is_nan() { F::zero() } else { v.signum() };
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
    fn regularizer<F: FastFloat>(self, w: &[&[F]], scale: F, dw: &mut [Vec<F>]) -> F {
        let mut value = sparsity(true, w[0], scale, &mut dw[0]);
        if self.imaginary {
            let n = F::from(w[1].len()).expect("a count");
            let mut sum = F::zero();
            for (&v, d) in w[1].iter().zip(dw[1].iter_mut()) {
                let sign = if v == F::zero() { F::zero() } else { v.signum() };
                sum = sum + v.abs();
                *d = *d + scale / n * sign;
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

/// The NAC weight `W = tanh(Ŵ)⊙σ(M̂)` as the layers' Burn ops compute it on flex (the standard
/// library's `tanh` and `exp`; the sigmoid of [`ops::sigmoid`](super::sigmoid): flex's in f32,
/// `½ + ½·tanh(x/2)` in f64), so that the host step takes the generic step's bits; with
/// `[tanh(Ŵ), σ(M̂)]`, which the backward reads.
fn nac_weight<F: FastFloat>(w_hat: &[F], m_hat: &[F]) -> (Vec<F>, Vec<F>) {
    let (one, half) = (F::one(), F::from(0.5).expect("½"));
    let sigmoid = |x: F| match (is_f64::<F>(), x >= F::zero()) {
        (true, _) => (x * half).tanh() * half + half,
        (false, true) => one / (one + (-x).exp()),
        (false, false) => {
            let e = x.exp();
            e / (one + e)
        }
    };
    let mut cache: Vec<F> = w_hat.iter().map(|&v| v.tanh()).collect();
    cache.extend(m_hat.iter().map(|&v| sigmoid(v)));
    let (t, s) = cache.split_at(w_hat.len());
    let weight = t.iter().zip(s).map(|(&t, &s)| t * s).collect();
    (weight, cache)
}

/// `(dŴ, dM̂)` of [`nac_weight`] for `dW`, from its cache `[t, s]` and `M̂`, as Burn's backward
/// forms them: through flex's sigmoid `dM̂ = dW·t·s·(1 − s)`; through f64's `½ + ½·tanh(M̂/2)`,
/// `dM̂ = dW·t·½·(1 − u²)·½` with `u = tanh(M̂/2)`.
fn nac_weight_backward<F: FastFloat>(dw: &[F], cache: &[F], m_hat: &[F]) -> Vec<Vec<F>> {
    let (t, s) = cache.split_at(dw.len());
    let (dw_hat, mut dm_hat) = nac_weight_grads(dw, t, s);
    if is_f64::<F>() {
        let (one, half) = (F::one(), F::from(0.5).expect("½"));
        for (k, d) in dm_hat.iter_mut().enumerate() {
            let u = (m_hat[k] * half).tanh();
            *d = dw[k] * t[k] * half * (one - u * u) * half;
        }
    }
    vec![dw_hat, dm_hat]
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
