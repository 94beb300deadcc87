//! The math shared by the units, written once.
//!
//! Every function here is generic over rank and backend: it takes and returns plain Burn tensors,
//! so it records into the autodiff graph when the inputs live on an autodiff device.

#[cfg(feature = "flex")]
mod fast_math;
pub mod fused;

use burn::module::{DisplaySettings, Param};
use burn::tensor::module::linear;
use burn::tensor::{DType, Distribution, Tensor, activation};

/// Logistic sigmoid, `σ(x) = 1 / (1 + exp(−x))`, at the precision of `x`.
///
/// Burn's `sigmoid` is one fused op with a one-op backward, the fastest form, but its default
/// implementation (the one `ndarray` uses) evaluates in f32 even on f64 tensors, which breaks
/// f64 gradient checks. So f64 tensors use `½ + ½·tanh(x/2)` instead: exact, at full precision,
/// and saturating cleanly both ways (`1 / (1 + exp(−x))` built from primitives has a NaN
/// gradient once `exp(−x)` overflows).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F64 {
        x.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
    } else {
        activation::sigmoid(x)
    }
}

/// `1 − x`, element-wise.
pub fn one_minus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.neg().add_scalar(1.0)
}

/// The NAC weight transform, `W = tanh(Ŵ) ⊙ σ(M̂)`: it biases `W` towards {−1, 0, 1}.
pub fn nac_weight(w_hat: Tensor<2>, m_hat: Tensor<2>) -> Tensor<2> {
    w_hat.tanh().mul(sigmoid(m_hat))
}

/// `x·W` over the last axis: `[..., d_in] · [d_in, d_out] → [..., d_out]`.
pub fn matmul_last<const D: usize>(x: Tensor<D>, weight: Tensor<2>) -> Tensor<D> {
    linear(x, weight, None)
}

/// The log-space product, `exp(log(|x| + ε)·W)`: output `j` is `Π_i (|x_i| + ε)^{W_ij}`.
///
/// With `W` in {−1, 0, 1} this multiplies and divides inputs; fractional weights give powers
/// (`W = ½` is a square root). The sign of `x` is lost, as in the NALU paper.
pub fn log_space_matmul<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    epsilon: f64,
) -> Tensor<D> {
    matmul_last(x.abs().add_scalar(epsilon).log(), weight).exp()
}

/// The NALU gate mix, `g⊙a + (1 − g)⊙m`, in exactly that form.
///
/// The algebraically equal `m + g⊙(a − m)` rounds `a` away in f32 whenever `|m| ≫ |a|`, which
/// trained multiplicative paths produce (`m` of 1e10 beside `a` of 10); this form keeps `a`
/// exactly when the gate saturates to 1.
pub fn gated_mix<const D: usize>(gate: Tensor<D>, add: Tensor<D>, mul: Tensor<D>) -> Tensor<D> {
    let keep_mul = one_minus(gate.clone());
    gate.mul(add).add(keep_mul.mul(mul))
}

/// The gated NALU layer, `y = g⊙a + (1 − g)⊙m` with `a = x·W`, `m = exp(log(|x| + ε)·W)`,
/// `g = σ(x·G)` and `W = tanh(Ŵ) ⊙ σ(M̂)`, over the last axis of `x`.
///
/// On the flex backend the layer runs as one fused op ([`fused`]); elsewhere as the composition
/// in [`gated_nalu_reference`].
pub fn gated_nalu<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<D> {
    let mut dims = x.dims();
    let [d_in, d_out] = w_hat.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    if !crate::backend::takes_fused_path(&x) {
        return gated_nalu_reference(x, w_hat, m_hat, gate, epsilon);
    }
    dims[D - 1] = d_out;
    let y = fused::gated_nalu(to_rank(x, [rows, d_in]), w_hat, m_hat, gate, epsilon);
    to_rank(y, dims)
}

/// `t` reshaped to `dims`; a relabelling only when the rank does not change, since a reshape
/// is an autodiff node (several µs) even when the shape stays the same.
fn to_rank<const A: usize, const B: usize>(t: Tensor<A>, dims: [usize; B]) -> Tensor<B> {
    if A == B {
        debug_assert_eq!(
            &t.dims()[..],
            &dims[..],
            "a same-rank reshape must keep the shape"
        );
        Tensor::from_dispatch(t.into_dispatch())
    } else {
        t.reshape(dims)
    }
}

/// [`gated_nalu`] as a plain composition of Burn ops, on every backend: the reference twin the
/// fused kernels are tested against, and the path of backends without them.
pub fn gated_nalu_reference<const D: usize>(
    x: Tensor<D>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<D> {
    let weight = nac_weight(w_hat, m_hat);
    let add = matmul_last(x.clone(), weight.clone());
    let mul = log_space_matmul(x.clone(), weight, epsilon);
    gated_mix(sigmoid(matmul_last(x, gate)), add, mul)
}

/// The NMU product, `z_j = Π_i (W_ij·x_i + 1 − W_ij)`: `[..., d_in] → [..., d_out]`.
///
/// Burn's `prod_dim` has a zero-safe gradient, so inputs (and factors) of exactly 0 are fine.
pub fn gated_product<const D: usize>(x: Tensor<D>, weight: Tensor<2>) -> Tensor<D> {
    let mut dims = x.dims();
    let [d_in, d_out] = weight.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    // [rows, d_in, 1] ⊙ [1, d_in, d_out] broadcasts to [rows, d_in, d_out]; Π runs over d_in.
    let factors = x
        .reshape([rows, d_in])
        .unsqueeze_dim::<3>(2)
        .mul(weight.clone().unsqueeze::<3>())
        .add(one_minus(weight).unsqueeze::<3>());
    dims[D - 1] = d_out;
    factors.prod_dim(1).reshape(dims)
}

/// The NPU's polar form of the gated input: `(log r, k)` with `r = ĝ⊙(|x| + ε) + (1 − ĝ)` and
/// `k = π·ĝ⊙[x < 0]`, so that `log x = log r + i·k` for the relevant inputs.
pub fn npu_polar<const D: usize>(
    x: Tensor<D>,
    gate: Tensor<1>,
    epsilon: f64,
) -> (Tensor<D>, Tensor<D>) {
    let gate = gate.unsqueeze::<D>();
    let negative = x.clone().lower_elem(0.0).float();
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

/// `min(|w|, |1 − |w||)` per weight: the distance to the nearest of −1, 0 and 1 (the NAU's
/// sparsity measure; the outer `|·|` matters only for unclamped weights such as the NPU's).
pub fn sparsity_to_signed_unit<const D: usize>(w: Tensor<D>) -> Tensor<D> {
    let abs = w.abs();
    let to_one = one_minus(abs.clone()).abs();
    abs.min_pair(to_one)
}

/// `mean(1 − ĝ)`: how far, on average, the NPU relevance gates are from open.
pub fn gate_closure(gate: Tensor<1>) -> Tensor<1> {
    one_minus(gate).mean()
}

/// `min(w, 1 − w)` per weight: 0 exactly at 0 and 1 (the NMU's sparsity measure).
pub fn sparsity_to_unit<const D: usize>(w: Tensor<D>) -> Tensor<D> {
    let to_one = one_minus(w.clone());
    w.min_pair(to_one)
}

/// A parameter whose value is replaced by `f(value)`, computed outside any autodiff graph: the
/// new value is a fresh leaf, tracked for gradients exactly when the old one was.
fn replace_value<const D: usize>(
    param: Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    param.map(|t| {
        let tracked = t.is_require_grad();
        let value = f(t).detach();
        if tracked { value.require_grad() } else { value }
    })
}

/// A parameter with its value clamped to `[min, max]`: the projection the units apply after
/// each optimizer step.
pub fn clamp_param<const D: usize>(
    param: Param<Tensor<D>>,
    min: f64,
    max: f64,
) -> Param<Tensor<D>> {
    replace_value(param, |t| t.clamp(min, max))
}

/// A parameter with a fresh value drawn from `distribution` on its device (a restart).
pub fn redraw_param<const D: usize>(
    param: Param<Tensor<D>>,
    distribution: Distribution,
) -> Param<Tensor<D>> {
    replace_value(param, |t| {
        Tensor::random(t.shape(), distribution, &t.device())
    })
}

/// The one-line display every unit uses (`Nac {d_input: 3, d_output: 5, params: 30}`).
pub fn inline_display() -> Option<DisplaySettings> {
    DisplaySettings::new()
        .with_new_line_after_attribute(false)
        .optional()
}

/// Panics unless the last axis of an input of shape `dims` has size `d_input`.
///
/// The message names the layer, the expected and the received size, and the whole shape,
/// instead of leaving the mismatch to surface from inside a matmul.
pub fn check_input_features(layer: &str, dims: &[usize], d_input: usize) {
    let got = dims.last().copied().unwrap_or(0);
    assert!(
        got == d_input,
        "{layer}: input must have d_input = {d_input} features in its last dimension, \
         got {got} (input shape {dims:?})"
    );
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

    #[test]
    #[should_panic(
        expected = "Nac: input must have d_input = 4 features in its last dimension, \
                               got 3 (input shape [2, 3])"
    )]
    fn check_input_features_names_layer_and_sizes() {
        check_input_features("Nac", &[2, 3], 4);
    }
}
