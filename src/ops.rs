//! The math shared by the units, written once.
//!
//! Every function here is generic over rank and backend: it takes and returns plain Burn tensors,
//! so it records into the autodiff graph when the inputs live on an autodiff device.

use burn::tensor::Tensor;
use burn::tensor::module::linear;

/// Logistic sigmoid, `σ(x) = 1 / (1 + exp(−x))`, evaluated as `½ + ½·tanh(x/2)`.
///
/// Why not Burn's `sigmoid`: its default implementation (used by `ndarray`) evaluates in f32
/// even on f64 tensors, which breaks f64 gradient checks; and `1 / (1 + exp(−x))` built from
/// primitives has a NaN gradient once `exp(−x)` overflows (`x < −88` in f32). The tanh form is
/// exact, keeps the tensor's precision and saturates cleanly in both directions.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
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
    let keep_mul = gate.clone().neg().add_scalar(1.0);
    gate.mul(add).add(keep_mul.mul(mul))
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
    use burn::tensor::{Device, Tolerance};

    #[test]
    fn sigmoid_matches_logistic_function_and_saturates() {
        let device = Device::default();
        let xs = [-200.0f32, -20.0, -2.0, -0.5, 0.0, 0.5, 2.0, 20.0, 200.0];
        let got = sigmoid(Tensor::<1>::from_floats(xs, &device)).into_data();
        let expected: Vec<f32> = xs.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
        got.assert_approx_eq::<f32>(
            &burn::tensor::TensorData::new(expected, [xs.len()]),
            Tolerance::absolute(1e-6),
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
