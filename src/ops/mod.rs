//! The math shared by the units, written once, and the fused NALU op with its reference twin.
//!
//! Every function is generic over rank and backend: it takes and returns plain Burn tensors, so
//! it records into the autodiff graph when the inputs live on an autodiff device.
//!
//! Most take `members`, the number of independent copies of a unit whose parameters are stacked
//! along each parameter's first axis (a [`Population`](crate::Population)). With one member the
//! input is `[..., d_in]` of any rank and a weight `[d_in, d_out]`; with `S` members the input
//! is `[S, batch, d_in]`, a weight `[S·d_in, d_out]` (member `k` owns rows `k·d_in..(k+1)·d_in`)
//! and a per-input vector `[S·d_in]`. A unit written with these functions gets its population
//! form without a line of its own.
//!
//! Public: [`gated_nalu`], the gated NALU layer, and [`nmu_product`], the NMU's product (both
//! fused on flex), each beside its plain composition of Burn ops that the tests compare it with
//! ([`gated_nalu_reference`], [`nmu_product_reference`]).

#[cfg(feature = "flex")]
mod fast_math;
#[cfg(feature = "flex")]
pub(crate) mod fused;
#[cfg(feature = "flex")]
#[doc(hidden)]
pub mod host;
pub(crate) mod init;

#[cfg(feature = "flex")]
#[doc(hidden)]
pub use fast_math::FastFloat;

use burn::module::{DisplaySettings, Param};
use burn::tensor::module::linear;
use burn::tensor::{DType, Distribution, Tensor, activation};

/// Magnitude from which the iNALU regulariser stops pushing a parameter outwards (its tensor
/// form in the unit, its host form in `host::inalu`).
pub(crate) const INALU_REGULARIZER_THRESHOLD: f64 = 20.0;

/// Logistic sigmoid, `σ(x) = 1 / (1 + exp(−x))`, at the precision of `x`.
///
/// Burn's `sigmoid` is one fused op with a one-op backward, the fastest form, but its default
/// implementation (the one `ndarray` uses) evaluates in f32 even on f64 tensors, which breaks
/// f64 gradient checks. So f64 tensors use `½ + ½·tanh(x/2)` instead: exact, at full precision,
/// and saturating cleanly both ways (`1 / (1 + exp(−x))` built from primitives has a NaN
/// gradient once `exp(−x)` overflows).
pub(crate) fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F64 {
        x.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
    } else {
        activation::sigmoid(x)
    }
}

/// `1 − x`, element-wise.
pub(crate) fn one_minus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.neg().add_scalar(1.0)
}

/// The NAC weight transform, `W = tanh(Ŵ) ⊙ σ(M̂)`: it biases `W` towards {−1, 0, 1}.
pub(crate) fn nac_weight(w_hat: Tensor<2>, m_hat: Tensor<2>) -> Tensor<2> {
    w_hat.tanh().mul(sigmoid(m_hat))
}

/// `t` as a tensor of rank `B`, which must be its rank: a relabelling of the type, no op.
fn relabel<const A: usize, const B: usize>(t: Tensor<A>) -> Tensor<B> {
    assert_eq!(A, B, "a relabelling keeps the rank");
    Tensor::from_dispatch(t.into_dispatch())
}

/// `t` as the rank-3 `[members, batch, features]` tensor it must be for a population.
fn members_input<const D: usize>(t: Tensor<D>) -> Tensor<3> {
    assert_eq!(D, 3, "a population's input is [members, batch, features]");
    relabel(t)
}

/// `x·W` over the last axis: `[..., d_in] · [d_in, d_out] → [..., d_out]`; for a population,
/// `[S, batch, d_in] · [S·d_in, d_out] → [S, batch, d_out]`, member by member. On flex, one
/// fused op (the same loops at every SIMD level); elsewhere Burn's matrix product.
pub(crate) fn matmul_members<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    members: usize,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::backend::takes_fused_path(&x) {
        return fused::linear(x, weight, members);
    }
    if members == 1 {
        return linear(x, weight, None);
    }
    let [rows, d_out] = weight.dims();
    relabel(members_input(x).matmul(weight.reshape([members, rows / members, d_out])))
}

/// The mean of each member's part of `t` (its first axis split into `members` blocks), `[S]`;
/// one member: the mean of all of `t`, `[1]`.
pub(crate) fn member_mean<const D: usize>(t: Tensor<D>, members: usize) -> Tensor<1> {
    if members == 1 {
        return t.mean();
    }
    let n = t.shape().num_elements();
    t.reshape([members, n / members])
        .mean_dim(1)
        .reshape([members])
}

/// A per-feature vector (`[n]`, or `[S·n]` for a population) shaped to broadcast over the
/// last axis of a rank-`D` input: `[1, …, 1, n]`, or `[S, 1, n]`.
pub(crate) fn per_feature<const D: usize>(v: Tensor<1>, members: usize) -> Tensor<D> {
    if members == 1 {
        return v.unsqueeze::<D>();
    }
    let n = v.dims()[0] / members;
    relabel(v.reshape([members, 1, n]))
}

/// `ln(max(|x|, ε))`, element-wise: the iNALU's log path. On flex one fused op (with the
/// vectorised `ln`); elsewhere `abs`, `clamp_min` and `log`. The gradient is `1/x` where
/// `|x| ≥ ε` and 0 where the clamp holds, on both paths.
pub(crate) fn clamped_log_abs<const D: usize>(x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::backend::takes_fused_path(&x) {
        return fused::clamped_log_abs(x, epsilon);
    }
    clamped_log_abs_reference(x, epsilon)
}

/// [`clamped_log_abs`] as Burn ops.
fn clamped_log_abs_reference<const D: usize>(x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    x.abs().clamp_min(epsilon).log()
}

/// The log-space product, `exp(log(|x| + ε)·W)`: output `j` is `Π_i (|x_i| + ε)^{W_ij}`.
///
/// With `W` in {−1, 0, 1} this multiplies and divides inputs; fractional weights give powers
/// (`W = ½` is a square root). The sign of `x` is lost, as in the NALU paper.
pub(crate) fn log_space_matmul<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    matmul_members(x.abs().add_scalar(epsilon).log(), weight, members).exp()
}

/// The NALU gate mix, `g⊙a + (1 − g)⊙m`, in exactly that form.
///
/// The algebraically equal `m + g⊙(a − m)` rounds `a` away in f32 whenever `|m| ≫ |a|`, which
/// trained multiplicative paths produce (`m` of 1e10 beside `a` of 10); this form keeps `a`
/// exactly when the gate saturates to 1.
pub(crate) fn gated_mix<const D: usize>(
    gate: Tensor<D>,
    add: Tensor<D>,
    mul: Tensor<D>,
) -> Tensor<D> {
    let keep_mul = one_minus(gate.clone());
    gate.mul(add).add(keep_mul.mul(mul))
}

/// The gated NALU layer, `y = g⊙a + (1 − g)⊙m` with `a = x·W`, `m = exp(log(|x| + ε)·W)`,
/// `g = σ(x·G)` and `W = tanh(Ŵ) ⊙ σ(M̂)`, over the last axis of `x` (`[..., d_in]`, weights
/// `[d_in, d_out]`).
///
/// On the flex backend (in f32 and f64) the layer runs as one op with a hand-written backward;
/// elsewhere as [`gated_nalu_reference`], with the same results to rounding.
pub fn gated_nalu<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<D> {
    gated_nalu_members(x, w_hat, m_hat, gate, epsilon, 1)
}

/// [`gated_nalu`] for `members` stacked copies.
pub(crate) fn gated_nalu_members<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::backend::takes_fused_path(&x) {
        return fused::gated_nalu(x, w_hat, m_hat, gate, epsilon, members);
    }
    reference_members(x, w_hat, m_hat, gate, epsilon, members)
}

/// [`gated_nalu`] as a plain composition of Burn ops, on every backend: the reference twin the
/// fused op is tested against, and the path of backends without it.
pub fn gated_nalu_reference<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<D> {
    reference_members(x, w_hat, m_hat, gate, epsilon, 1)
}

fn reference_members<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    let weight = nac_weight(w_hat, m_hat);
    let add = matmul_members(x.clone(), weight.clone(), members);
    let mul = log_space_matmul(x.clone(), weight, epsilon, members);
    gated_mix(sigmoid(matmul_members(x, gate, members)), add, mul)
}

/// The NMU product, `z_j = Π_i (W_ij·x_i + 1 − W_ij)`, over the last axis of `x`
/// (`[..., d_in]`, weight `[d_in, d_out]`): with `W` in {0, 1}, the product of the selected
/// inputs.
///
/// On the flex backend (in f32 and f64) it runs as one op with a hand-written backward;
/// elsewhere as [`nmu_product_reference`], with the same results to rounding. Both give
/// finite gradients where a factor is exactly 0.
pub fn nmu_product<const D: usize>(x: Tensor<D>, weight: Tensor<2>) -> Tensor<D> {
    nmu_product_members(x, weight, 1)
}

/// [`nmu_product`] as a plain composition of Burn ops, on every backend: the reference twin the
/// fused op is tested against, and the path of backends without it.
pub fn nmu_product_reference<const D: usize>(x: Tensor<D>, weight: Tensor<2>) -> Tensor<D> {
    nmu_reference_members(x, weight, 1)
}

/// [`nmu_product`] for `members` stacked copies (`[S, batch, d_in]` and `[S·d_in, d_out]`).
pub(crate) fn nmu_product_members<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    members: usize,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::backend::takes_fused_path(&x) {
        return fused::nmu_product(x, weight, members);
    }
    nmu_reference_members(x, weight, members)
}

/// Burn's `prod_dim` has a zero-safe gradient, so inputs (and factors) of exactly 0 are fine.
fn nmu_reference_members<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    members: usize,
) -> Tensor<D> {
    factor_product(x, weight, members, |x, w| {
        x.mul(w.clone()).add(one_minus(w))
    })
}

/// `z_j = Π_i factor(x_i, W_ij)` over the last axis, each member with its own weights:
/// `factor` receives `x` as `[S, rows, d_in, 1]` and `W` as `[S, 1, d_in, d_out]` and returns
/// their broadcast `[S, rows, d_in, d_out]`; the product runs over `d_in`.
pub(crate) fn factor_product<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    members: usize,
    factor: impl FnOnce(Tensor<4>, Tensor<4>) -> Tensor<4>,
) -> Tensor<D> {
    let mut dims = x.dims();
    let [rows_w, d_out] = weight.dims();
    let d_in = rows_w / members;
    let rows = dims[..D - 1].iter().product::<usize>() / members;
    let w = weight.reshape([members, 1, d_in, d_out]);
    let factors = factor(x.reshape([members, rows, d_in, 1]), w);
    dims[D - 1] = d_out;
    factors.prod_dim(2).reshape(dims)
}

/// The NPU's polar form of the gated input: `(log r, k)` with `r = ĝ⊙(|x| + ε) + (1 − ĝ)` and
/// `k = π·ĝ⊙[x < 0]`, so that `log x = log r + i·k` for the relevant inputs.
pub(crate) fn npu_polar<const D: usize>(
    x: Tensor<D>,
    gate: Tensor<1>,
    epsilon: f64,
    members: usize,
) -> (Tensor<D>, Tensor<D>) {
    let gate = per_feature::<D>(gate, members);
    let negative = negative_indicator(&x);
    let r = x
        .abs()
        .add_scalar(epsilon)
        .mul(gate.clone())
        .add(one_minus(gate.clone()));
    (
        r.log(),
        negative.mul(gate).mul_scalar(core::f64::consts::PI),
    )
}

/// 1 where `x < 0`, 0 elsewhere, in `x`'s float type (a bool mask's `float()` takes the
/// device's default one, which breaks a model cast to f64 on an f32 device).
pub(crate) fn negative_indicator<const D: usize>(x: &Tensor<D>) -> Tensor<D> {
    Tensor::zeros_like(x).mask_fill(x.clone().lower_elem(0.0), 1.0)
}

/// `cos(π·[x < 0]·W)` over the last axis: the sign of `Π_i x_i^{W_i}` as the real part of
/// complex powers (the NMRU's sign retrieval; the Hill Space unit's exponential primitive).
pub(crate) fn sign_factor<const D: usize>(
    x: &Tensor<D>,
    weight: Tensor<2>,
    members: usize,
) -> Tensor<D> {
    let negative = negative_indicator(x).mul_scalar(core::f64::consts::PI);
    matmul_members(negative, weight, members).cos()
}

/// The NPU's product of powers, `exp(log r·W_re − k·W_im) ⊙ cos(log r·W_im + k·W_re)` with
/// `(log r, k)` of [`npu_polar`]; the RealNPU's (`w_im` absent) is the same with `W_im = 0`,
/// written without its products.
pub(crate) fn npu_power<const D: usize>(
    input: Tensor<D>,
    w_re: Tensor<2>,
    w_im: Option<Tensor<2>>,
    gate: Tensor<1>,
    epsilon: f64,
    members: usize,
) -> Tensor<D> {
    let (log_r, k) = npu_polar(input, gate, epsilon, members);
    let mm = |a: Tensor<D>, w: Tensor<2>| matmul_members(a, w, members);
    match w_im {
        Some(w_im) => {
            let magnitude = mm(log_r.clone(), w_re.clone()).sub(mm(k.clone(), w_im.clone()));
            let phase = mm(log_r, w_im).add(mm(k, w_re));
            magnitude.exp().mul(phase.cos())
        }
        None => mm(log_r, w_re.clone()).exp().mul(mm(k, w_re).cos()),
    }
}

/// `mean(1 − ĝ)` per member: how far, on average, the NPU's relevance gates are from open.
pub(crate) fn gate_closure(gate: Tensor<1>, members: usize) -> Tensor<1> {
    member_mean(one_minus(gate), members)
}

/// `min(|w|, |1 − |w||)` per weight: the distance to the nearest of −1, 0 and 1 (the NAU's
/// sparsity measure; the outer `|·|` matters only for unclamped weights such as the NPU's).
pub(crate) fn sparsity_to_signed_unit<const D: usize>(w: Tensor<D>) -> Tensor<D> {
    let abs = w.abs();
    let to_one = one_minus(abs.clone()).abs();
    abs.min_pair(to_one)
}

/// `min(w, 1 − w)` per weight: 0 exactly at 0 and 1 (the NMU's sparsity measure).
pub(crate) fn sparsity_to_unit<const D: usize>(w: Tensor<D>) -> Tensor<D> {
    let to_one = one_minus(w.clone());
    w.min_pair(to_one)
}

/// A parameter whose value is replaced by `f(value)`, computed off autodiff: the new value is a
/// fresh leaf, on autodiff and tracked for gradients exactly when the old one was.
pub fn replace_value<const D: usize>(
    param: Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    param.map(|t| {
        let (autodiff, tracked) = (t.is_autodiff(), t.is_require_grad());
        // Off autodiff, not merely detached: Burn registers every op on an autodiff tensor in
        // its graph, tracked or not, and only a backward pass frees the entries (the host step
        // never runs one: a detached reshape a step grew a long run by 2.4 KB a step).
        let value = f(t.without_autodiff()).without_autodiff();
        match (autodiff, tracked) {
            (true, true) => value.autodiff().require_grad(),
            (true, false) => value.autodiff(),
            (false, _) => value,
        }
    })
}

/// A parameter with its value clamped to `[min, max]`: the projection the units apply after
/// each optimizer step.
pub(crate) fn clamp_param<const D: usize>(
    param: Param<Tensor<D>>,
    min: f64,
    max: f64,
) -> Param<Tensor<D>> {
    replace_value(param, |t| t.clamp(min, max))
}

/// A parameter with its value rounded to the nearest multiple of `1/steps` (then clamped to
/// `range`, if given): the snap of weights that stand for integer or half-integer values.
pub(crate) fn snap_param<const D: usize>(
    param: Param<Tensor<D>>,
    steps: f64,
    range: Option<(f64, f64)>,
) -> Param<Tensor<D>> {
    replace_value(param, |t| {
        let snapped = t.mul_scalar(steps).round().div_scalar(steps);
        match range {
            Some((min, max)) => snapped.clamp(min, max),
            None => snapped,
        }
    })
}

/// The factor on the gate logits of a snapped NALU or iNALU: a logit of at least 1e-5 in size
/// becomes at least 1,000, whose σ rounds to exactly 0 or 1 in f32 and f64.
pub(crate) const GATE_SNAP: f64 = 1e8;

/// `(Ŵ, M̂)` of a NAC whose weight `W = tanh(s·Ŵ)·σ(s·M̂)` (`s = ln b` of its base, 1 but for
/// the G-NALU) is `W` rounded to the nearest multiple of `1/steps` in [−1, 1]: `steps` 1 gives
/// −1, 0 or 1 exactly in f32 (`s·Ŵ = ±20`, tanh(20) rounds to 1, and `s·M̂ = 20`, σ(20) =
/// 1 − 2e-9 rounds to 1); `steps` 2 adds ±½ (`s·Ŵ = atanh(±½)`, within an ulp of ½).
pub(crate) fn snap_nac(
    w_hat: Param<Tensor<2>>,
    m_hat: Param<Tensor<2>>,
    log_base: f64,
    steps: f64,
) -> (Param<Tensor<2>>, Param<Tensor<2>>) {
    let scaled = |t: Tensor<2>| t.mul_scalar(log_base);
    let w = nac_weight(scaled(w_hat.val()), scaled(m_hat.val())).detach();
    let level = w
        .mul_scalar(steps)
        .round()
        .div_scalar(steps)
        .clamp(-1.0, 1.0);
    // atanh of the interior levels; ±1 (where atanh is infinite) saturates at ±20 instead.
    let inner = level.clone().clamp(-0.75, 0.75);
    let atanh = inner
        .clone()
        .add_scalar(1.0)
        .div(inner.neg().add_scalar(1.0))
        .log()
        .mul_scalar(0.5);
    let saturated = level.clone().abs().greater_equal_elem(1.0);
    let logit = atanh.mask_where(saturated, level.mul_scalar(20.0));
    let w_hat = replace_value(w_hat, |_| logit.div_scalar(log_base));
    let m_hat = replace_value(m_hat, |t| t.ones_like().mul_scalar(20.0 / log_base));
    (w_hat, m_hat)
}

/// A parameter with a fresh value drawn from `distribution` on its device (a restart).
pub(crate) fn redraw_param<const D: usize>(
    param: Param<Tensor<D>>,
    distribution: Distribution,
) -> Param<Tensor<D>> {
    replace_value(param, |t| {
        init::random(t.shape(), distribution, &t.device())
    })
}

/// The one-line display every unit uses (`Nac {d_input: 3, d_output: 5, params: 30}`).
pub(crate) fn inline_display() -> Option<DisplaySettings> {
    DisplaySettings::new()
        .with_new_line_after_attribute(false)
        .optional()
}

/// Panics unless an input of shape `dims` fits a layer of `d_input` features with `members`
/// copies: `[..., d_input]` for one, `[members, batch, d_input]` for a population.
///
/// The message names the layer, the expected and the received size, and the whole shape,
/// instead of leaving the mismatch to surface from inside a matmul.
pub(crate) fn check_input(layer: &str, dims: &[usize], d_input: usize, members: usize) {
    let got = dims.last().copied().unwrap_or(0);
    assert!(
        got == d_input,
        "{layer}: input must have d_input = {d_input} features in its last dimension, \
         got {got} (input shape {dims:?})"
    );
    if members > 1 {
        assert!(
            dims.len() == 3 && dims[0] == members,
            "{layer}: a population of {members} takes input [{members}, batch, {d_input}], \
             got shape {dims:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData, Tolerance};

    #[test]
    fn sigmoid_matches_logistic_function_and_saturates() {
        let device = Device::default();
        let xs = [-200.0f32, -20.0, -2.0, -0.5, 0.0, 0.5, 2.0, 20.0, 200.0];
        let got = sigmoid(Tensor::<1>::from_floats(xs, &device)).into_data();
        let expected: Vec<f32> = xs.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
        // σ within a few ulp of values ≤ 1: 1e-6 absolute.
        got.assert_approx_eq::<f32>(
            &TensorData::new(expected, [xs.len()]),
            Tolerance::absolute(1e-6),
        );
    }

    #[test]
    fn sparsity_measures_are_distances_to_the_discrete_values() {
        let device = Device::default();
        let w = Tensor::<1>::from_floats([-2.0, -1.0, -0.75, -0.25, 0.0, 0.5, 1.0, 1.5], &device);
        let signed = sparsity_to_signed_unit(w.clone()).into_data();
        assert_eq!(
            signed,
            TensorData::from([1.0f32, 0.0, 0.25, 0.25, 0.0, 0.5, 0.0, 0.5])
        );
        let unit = sparsity_to_unit(w.clamp(0.0, 1.0)).into_data();
        assert_eq!(
            unit,
            TensorData::from([0.0f32, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
        );
    }

    #[test]
    fn gated_mix_keeps_small_add_beside_huge_mul() {
        let device = Device::default();
        let t = |v: f32| Tensor::<1>::from_floats([v], &device);
        let y = gated_mix(t(1.0), t(10.0), t(1e10));
        assert_eq!(y.into_scalar::<f32>(), 10.0);
    }

    /// Member by member, the population forms compute what the plain ones do on that member's
    /// slice (exact here: small integers, one rounding at most).
    #[test]
    fn population_forms_act_member_by_member() {
        let device = Device::default();
        let x = Tensor::<3>::from_floats(
            [[[1.0, 2.0], [3.0, -1.0]], [[0.5, 4.0], [-2.0, 2.0]]],
            &device,
        );
        let w = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], &device);
        let gate = Tensor::<1>::from_floats([1.0, 0.0, 0.5, 1.0], &device);
        let pick = |t: Tensor<2>, k: usize| t.narrow(0, 2 * k, 2);
        let one = |t: Tensor<3>, k: usize| t.narrow(0, k, 1).reshape([2, 2]);
        for k in 0..2 {
            let check = |pop: Tensor<3>, plain: Tensor<2>| {
                assert_eq!(one(pop, k).into_data(), plain.into_data(), "member {k}");
            };
            let (xk, wk) = (one(x.clone(), k), pick(w.clone(), k));
            check(
                matmul_members(x.clone(), w.clone(), 2),
                matmul_members(xk.clone(), wk.clone(), 1),
            );
            check(
                nmu_product_members(x.clone(), w.clone(), 2),
                nmu_product_members(xk.clone(), wk, 1),
            );
            let gk = gate.clone().narrow(0, 2 * k, 2);
            let (lr, kk) = npu_polar(x.clone(), gate.clone(), 0.0, 2);
            let (lr1, kk1) = npu_polar(xk.clone(), gk, 0.0, 1);
            check(lr, lr1);
            check(kk, kk1);
        }
        let reg = member_mean(w.clone(), 2).into_data();
        assert_eq!(reg, TensorData::from([0.75f32, 0.5]));
        assert_eq!(member_mean(w, 1).into_data(), TensorData::from([0.625f32]));
    }

    #[test]
    #[should_panic(
        expected = "Nac: input must have d_input = 4 features in its last dimension, \
                               got 3 (input shape [2, 3])"
    )]
    fn check_input_names_layer_and_sizes() {
        check_input("Nac", &[2, 3], 4, 1);
    }

    #[test]
    #[should_panic(
        expected = "Nau: a population of 3 takes input [3, batch, 4], got shape [2, 5, 4]"
    )]
    fn check_input_names_the_population_size() {
        check_input("Nau", &[2, 5, 4], 4, 3);
    }
}
