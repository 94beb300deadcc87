//! A fused NALU layer (forward and hand-written backward) for small CPU workloads.
//!
//! On small layers such as the static toy's `Nalu(100 → 2)`, a Burn op costs far more in
//! dispatch and autodiff bookkeeping (about 6 µs per op on flex) than in arithmetic, and a NALU
//! layer is some 25 ops forward and 50 backward. This module computes the whole gated layer in
//! one pass over host slices, registered as a single autodiff node whose backward is written
//! out below. It runs on the flex backend, in f32 or f64, when the layer is small
//! ([`FUSED_MAX_WORK`]); everything else takes the generic path in [`super`], whose results
//! it matches to rounding (the tests check both against finite differences).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use num_traits::Float;

use super::fast_ln::LogAbs;

/// Largest `batch · d_input · d_output` the fused path takes; above it, the generic path's
/// matrix multiplications (blocked, vectorised, threaded) win.
pub const FUSED_MAX_WORK: usize = 1 << 18;

/// The fused gated-NALU kernels, as a Burn backend extension.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait FusedNalu: Backend {
    /// `y = g⊙a + (1 − g)⊙m` for `x: [batch, d_in]` and weights `[d_in, d_out]`.
    fn fused_nalu(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// [`FusedNalu::fused_nalu`] that also returns what the backward pass reuses, as one flat
    /// `[1, n]` tensor: `log(|x| + ε)`, `x·W`, `log(|x| + ε)·W`, `x·G`, `tanh(Ŵ)` and `σ(M̂)`.
    fn fused_nalu_with_cache(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients `(dx, dŴ, dM̂, dG)` of the layer for the output gradient `dy`, given the
    /// forward's `cache`; `dx` is all zeros unless `need_dx` (the input usually
    /// is data, with no gradient to compute).
    fn fused_nalu_backward(
        x: FloatTensor<Self>,
        cache: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
        dy: FloatTensor<Self>,
        need_dx: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

/// Whether [`gated_nalu`] takes a layer of sizes `[rows, d_in, d_out]` with input `x`: on the
/// flex backend, in f32 or f64, up to [`FUSED_MAX_WORK`].
pub fn supported<const D: usize>([rows, d_in, d_out]: [usize; 3], x: &Tensor<D>) -> bool {
    rows * d_in * d_out <= FUSED_MAX_WORK
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && on_flex(&x.device())
}

#[cfg(feature = "flex")]
pub(crate) fn on_flex(device: &burn::tensor::Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(not(feature = "flex"))]
pub(crate) fn on_flex(_device: &burn::tensor::Device) -> bool {
    false
}

/// The gated NALU layer through the fused kernels; check [`supported`] first.
pub fn gated_nalu(
    x: Tensor<2>,
    w_hat: Tensor<2>,
    m_hat: Tensor<2>,
    gate: Tensor<2>,
    epsilon: f64,
) -> Tensor<2> {
    let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(Tensor::into_dispatch);
    let y = <burn::backend::Dispatch as FusedNalu>::fused_nalu(x, w_hat, m_hat, gate, epsilon);
    Tensor::from_dispatch(y)
}

/// Sizes of one layer call.
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    d_in: usize,
    d_out: usize,
}

fn sigmoid<F: Float>(z: F) -> F {
    // The branch keeps exp's argument ≤ 0: no overflow, full precision in both tails.
    if z >= F::zero() {
        F::one() / (F::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (F::one() + e)
    }
}

/// `(tanh(ŵ), σ(m̂), W = tanh(ŵ)·σ(m̂))`, element by element.
fn nac_weight<F: Float>(w_hat: &[F], m_hat: &[F]) -> (Vec<F>, Vec<F>, Vec<F>) {
    let t: Vec<F> = w_hat.iter().map(|w| w.tanh()).collect();
    let s: Vec<F> = m_hat.iter().map(|&m| sigmoid(m)).collect();
    let w = t.iter().zip(&s).map(|(&t, &s)| t * s).collect();
    (t, s, w)
}

/// `Σ_k a_k·b_k` with eight independent partial sums, so that the compiler can keep them in
/// one SIMD register (it may not reorder a single running float sum).
fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let mut acc = [F::zero(); 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: F = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(F::zero(), |s, (&x, &y)| s + x * y);
    for (ca, cb) in a8.zip(b8) {
        for k in 0..8 {
            acc[k] = acc[k] + ca[k] * cb[k];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major.
fn transpose<F: Float>(m: &[F], rows: usize, cols: usize) -> Vec<F> {
    let mut t = vec![F::zero(); rows * cols];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// The per-batch values both passes need: `log(|x| + ε)`, and per row and output
/// `a = x·W`, `l = log(|x| + ε)·W`, `z = x·G`, each `[batch, d_out]`.
struct Sums<F> {
    logs: Vec<F>,
    a: Vec<F>,
    l: Vec<F>,
    z: Vec<F>,
}

fn sums<F: Float>(x: &[F], logs: Vec<F>, w: &[F], gate: &[F], d: Dims) -> Sums<F> {
    // Columns of W and G as contiguous rows, so every sum below is a contiguous dot product.
    let (w_t, g_t) = (
        transpose(w, d.d_in, d.d_out),
        transpose(gate, d.d_in, d.d_out),
    );
    let n = d.batch * d.d_out;
    let (mut a, mut l, mut z) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (x_row, log_row) in x.chunks(d.d_in).zip(logs.chunks(d.d_in)) {
        for (w_col, g_col) in w_t.chunks(d.d_in).zip(g_t.chunks(d.d_in)) {
            a.push(dot(x_row, w_col));
            l.push(dot(log_row, w_col));
            z.push(dot(x_row, g_col));
        }
    }
    Sums { logs, a, l, z }
}

/// `(y, cache)`, where the cache holds what the backward pass needs: `log(|x| + ε)`
/// (`batch · d_in` values), `a`, `l` and `z` (`batch · d_out` each), then `tanh(Ŵ)` and
/// `σ(M̂)` (`d_in · d_out` each).
fn forward<F: Float + LogAbs>(
    x: &[F],
    w_hat: &[F],
    m_hat: &[F],
    gate: &[F],
    eps: F,
    d: Dims,
) -> (Vec<F>, Vec<F>) {
    let (t, sg, w) = nac_weight(w_hat, m_hat);
    let s = sums(x, F::log_abs(x, eps), &w, gate, d);
    let y = (0..d.batch * d.d_out)
        .map(|k| {
            let (g, m) = (sigmoid(s.z[k]), s.l[k].exp());
            g * s.a[k] + (F::one() - g) * m
        })
        .collect();
    let mut cache = s.logs;
    cache.extend(s.a.iter().chain(&s.l).chain(&s.z).chain(&t).chain(&sg));
    (y, cache)
}

/// `y += a·x + b·v` over three slices of one length (vectorises; no reductions).
fn axpy2<F: Float>(y: &mut [F], a: F, x: &[F], b: F, v: &[F]) {
    for ((y, &x), &v) in y.iter_mut().zip(x).zip(v) {
        *y = *y + a * x + b * v;
    }
}

/// `(dx, dŴ, dM̂, dG)` by the chain rule through the forward pass above, from its cache; `dx`
/// is left empty unless `need_dx`.
#[allow(clippy::type_complexity)]
fn backward<F: Float>(
    x: &[F],
    cache: &[F],
    gate: &[F],
    eps: F,
    dy: &[F],
    d: Dims,
    need_dx: bool,
) -> (Vec<F>, Vec<F>, Vec<F>, Vec<F>) {
    let (n, k) = (d.batch * d.d_out, d.d_in * d.d_out);
    let (logs, pre) = cache.split_at(d.batch * d.d_in);
    let (a, l, z) = (&pre[..n], &pre[n..2 * n], &pre[2 * n..3 * n]);
    let (t, sg) = (&pre[3 * n..3 * n + k], &pre[3 * n + k..3 * n + 2 * k]);
    let w: Vec<F> = t.iter().zip(sg).map(|(&t, &s)| t * s).collect();
    // Gradients at the pre-activations, [batch, d_out]: da = dy·g, dl = dy·(1 − g)·m
    // (through m = exp(l)), dz = dy·(a − m)·g·(1 − g).
    let (mut da, mut dl, mut dz) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (k, &grad) in dy.iter().enumerate().take(n) {
        let (g, m) = (sigmoid(z[k]), l[k].exp());
        da.push(grad * g);
        dl.push(grad * (F::one() - g) * m);
        dz.push(grad * (a[k] - m) * g * (F::one() - g));
    }
    // dW = xᵀ·da + logsᵀ·dl and dG = xᵀ·dz, accumulated row by row into their transposes
    // (`[d_out, d_in]`), so each update runs along a contiguous input row.
    let mut dw_t = vec![F::zero(); w.len()];
    let mut dg_t = vec![F::zero(); w.len()];
    for (b, (x_row, log_row)) in x.chunks(d.d_in).zip(logs.chunks(d.d_in)).enumerate() {
        for j in 0..d.d_out {
            let (k, cols) = (b * d.d_out + j, j * d.d_in..(j + 1) * d.d_in);
            axpy2(&mut dw_t[cols.clone()], da[k], x_row, dl[k], log_row);
            axpy2(&mut dg_t[cols], dz[k], x_row, F::zero(), x_row);
        }
    }
    let (dw, dg) = (
        transpose(&dw_t, d.d_out, d.d_in),
        transpose(&dg_t, d.d_out, d.d_in),
    );
    let dx = if need_dx {
        input_grad(x, &w, gate, eps, (&da, &dl, &dz), d)
    } else {
        Vec::new()
    };
    let dw_hat = (0..w.len())
        .map(|k| dw[k] * sg[k] * (F::one() - t[k] * t[k]))
        .collect();
    let dm_hat = (0..w.len())
        .map(|k| dw[k] * t[k] * sg[k] * (F::one() - sg[k]))
        .collect();
    (dx, dw_hat, dm_hat, dg)
}

/// `dx = (da + dl·sign(x)/(|x| + ε))·Wᵀ + dz·Gᵀ`, from the pre-activation gradients.
fn input_grad<F: Float>(
    x: &[F],
    w: &[F],
    gate: &[F],
    eps: F,
    (da, dl, dz): (&[F], &[F], &[F]),
    d: Dims,
) -> Vec<F> {
    let mut dx = Vec::with_capacity(x.len());
    for (b, row) in x.chunks(d.d_in).enumerate() {
        let at = |m: &[F], j: usize| m[b * d.d_out + j];
        for (i, &xi) in row.iter().enumerate() {
            let dlog = xi.signum_or_zero() / (xi.abs() + eps);
            let k0 = i * d.d_out;
            let grad = (0..d.d_out).fold(F::zero(), |acc, j| {
                acc + (at(da, j) + at(dl, j) * dlog) * w[k0 + j] + at(dz, j) * gate[k0 + j]
            });
            dx.push(grad);
        }
    }
    dx
}

/// `sign(x)` with `sign(0) = 0`, the derivative of `|x|` Burn uses.
trait SignumOrZero {
    fn signum_or_zero(self) -> Self;
}

impl<F: Float> SignumOrZero for F {
    fn signum_or_zero(self) -> Self {
        if self == F::zero() {
            F::zero()
        } else {
            self.signum()
        }
    }
}

#[cfg(feature = "flex")]
mod flex {
    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;

    /// The values of `t` as a slice, made contiguous first when they are not.
    fn contiguous(t: FlexTensor) -> FlexTensor {
        if t.is_contiguous() {
            t
        } else {
            t.to_contiguous()
        }
    }

    fn values<F: Float + bytemuck::Pod + burn::tensor::Element>(t: &FlexTensor) -> &[F] {
        t.as_slice::<F>()
            .expect("a contiguous tensor of the layer's float type")
    }

    fn tensor<F: burn::tensor::Element>(values: Vec<F>, shape: [usize; 2]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    fn dims(x: &FlexTensor, w: &FlexTensor) -> Dims {
        let (xs, ws) = (x.layout().shape(), w.layout().shape());
        Dims {
            batch: xs[0],
            d_in: xs[1],
            d_out: ws[1],
        }
    }

    macro_rules! by_dtype {
        ($dtype:expr, $f:ident => $body:expr) => {
            match $dtype {
                DType::F64 => {
                    type $f = f64;
                    $body
                }
                DType::F32 => {
                    type $f = f32;
                    $body
                }
                other => panic!("fused NALU supports f32 and f64, got {other:?}"),
            }
        };
    }

    impl FusedNalu for Flex {
        fn fused_nalu(
            x: FlexTensor,
            w_hat: FlexTensor,
            m_hat: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
        ) -> FlexTensor {
            Self::fused_nalu_with_cache(x, w_hat, m_hat, gate, epsilon).0
        }

        fn fused_nalu_with_cache(
            x: FlexTensor,
            w_hat: FlexTensor,
            m_hat: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
        ) -> (FlexTensor, FlexTensor) {
            let d = dims(&x, &w_hat);
            let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(contiguous);
            by_dtype!(x.dtype(), F => {
                let eps = <F as num_traits::NumCast>::from(epsilon).expect("epsilon fits the float type");
                let (y, cache) = forward::<F>(values(&x), values(&w_hat), values(&m_hat), values(&gate), eps, d);
                let len = cache.len();
                (tensor(y, [d.batch, d.d_out]), tensor(cache, [1, len]))
            })
        }

        fn fused_nalu_backward(
            x: FlexTensor,
            cache: FlexTensor,
            gate: FlexTensor,
            epsilon: f64,
            dy: FlexTensor,
            need_dx: bool,
        ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
            let d = dims(&x, &gate);
            let [x, cache, gate, dy] = [x, cache, gate, dy].map(contiguous);
            by_dtype!(x.dtype(), F => {
                let eps = <F as num_traits::NumCast>::from(epsilon).expect("epsilon fits the float type");
                let (dx, dw, dm, dg) = backward::<F>(
                    values(&x), values(&cache), values(&gate), eps, values(&dy), d, need_dx,
                );
                let dx = if need_dx { dx } else { vec![0.0 as F; d.batch * d.d_in] };
                let weights = [d.d_in, d.d_out];
                (tensor(dx, [d.batch, d.d_in]), tensor(dw, weights), tensor(dm, weights), tensor(dg, weights))
            })
        }
    }
}

/// The autodiff node of the fused layer: its backward calls the inner backend's kernel.
#[derive(Debug)]
struct FusedNaluBackward;

impl<B: Backend + FusedNalu> Backward<B, 4> for FusedNaluBackward {
    /// The input `x`, the gate weights, the forward's cache and epsilon.
    type State = (
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        f64,
    );

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, gate, cache, eps) = ops.state;
        let need_dx = ops.parents[0].is_some();
        let (dx, dw, dm, dg) = B::fused_nalu_backward(x, cache, gate, eps, dy, need_dx);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dw, dm, dg]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FusedNalu, C: CheckpointStrategy> FusedNalu for Autodiff<B, C> {
    fn fused_nalu(
        x: FloatTensor<Self>,
        w_hat: FloatTensor<Self>,
        m_hat: FloatTensor<Self>,
        gate: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let [a, b, c, d] = [&x, &w_hat, &m_hat, &gate].map(|t| t.primitive().clone());
        match FusedNaluBackward
            .prepare::<C>([x.node(), w_hat.node(), m_hat.node(), gate.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gate) = (a.clone(), d.clone());
                let (y, cache) = B::fused_nalu_with_cache(a, b, c, d, epsilon);
                prep.finish((x, gate, cache, epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_nalu(a, b, c, d, epsilon)),
        }
    }

    fn fused_nalu_with_cache(
        _x: FloatTensor<Self>,
        _w_hat: FloatTensor<Self>,
        _m_hat: FloatTensor<Self>,
        _gate: FloatTensor<Self>,
        _epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        panic!("fused_nalu_with_cache runs on the inner backend only");
    }

    fn fused_nalu_backward(
        _x: FloatTensor<Self>,
        _cache: FloatTensor<Self>,
        _gate: FloatTensor<Self>,
        _epsilon: f64,
        _dy: FloatTensor<Self>,
        _need_dx: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        panic!("the fused NALU backward is not differentiable (no second-order gradients)");
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(fused: Vec<f32>, generic: Vec<f32>, what: &str) {
        for (i, (f, g)) in fused.iter().zip(&generic).enumerate() {
            let err = (f - g).abs() / (1e-3 + g.abs());
            assert!(err < 1e-4, "{what}[{i}]: fused {f}, generic {g}");
        }
    }

    /// The fused kernels and the generic composition agree, outputs and every gradient.
    #[test]
    fn fused_matches_generic_path() {
        let device = Device::flex().autodiff();
        let param = |seed, scale: f64| {
            device.seed(seed);
            Tensor::<2>::random([7, 3], Distribution::Uniform(-scale, scale), &device)
                .require_grad()
        };
        let (w_hat, m_hat, gate) = (param(1, 1.5), param(2, 1.5), param(3, 1.0));
        device.seed(4);
        let x =
            Tensor::<2>::random([5, 7], Distribution::Uniform(-2.0, 2.0), &device).require_grad();
        assert!(supported([5, 7, 3], &x));

        let run = |fused: bool| {
            let args = (x.clone(), w_hat.clone(), m_hat.clone(), gate.clone(), 1e-7);
            let y = if fused {
                gated_nalu(args.0, args.1, args.2, args.3, args.4)
            } else {
                super::super::gated_nalu_generic(args.0, args.1, args.2, args.3, args.4)
            };
            let grads = y.clone().mul(y.clone()).sum().backward();
            let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
            [values(y), grad(&x), grad(&w_hat), grad(&m_hat), grad(&gate)]
        };
        let names = ["output", "dx", "dŴ", "dM̂", "dG"];
        for ((f, g), name) in run(true).into_iter().zip(run(false)).zip(names) {
            assert_close(f, g, name);
        }
    }

    #[test]
    fn large_layers_and_other_backends_take_the_generic_path() {
        let flex = Device::flex();
        let x = Tensor::<2>::zeros([4096, 1024], &flex);
        assert!(!supported([4096, 1024, 1024], &x));
        assert!(supported([64, 100, 2], &x));
        assert!(!supported([64, 100, 2], &x.clone().cast(DType::F16)));
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        {
            let on_ndarray = Tensor::<2>::zeros([64, 100], &Device::ndarray());
            assert!(!supported([64, 100, 2], &on_ndarray));
        }
    }
}
