//! The fused ops on the flex backend: tensors in, host slices through `kernel`, tensors out.

use burn::tensor::DType;

use super::kernel::{
    backward, clamped_log_abs, clamped_log_abs_backward, forward, forward_values, linear_backward,
    linear_forward, nmu_backward, nmu_forward, recycle,
};
use super::{Dims, FusedLinear, FusedLogAbs, FusedNalu, FusedNmu};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, TensorData};

/// The values of `t` as a slice, made contiguous first when they are not.
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

fn values<F: bytemuck::Pod + burn::tensor::Element>(t: &FlexTensor) -> &[F] {
    t.as_slice::<F>()
        .expect("a contiguous tensor of the layer's float type")
}

/// The values of a contiguous tensor as a vector; no copy when the tensor owns them alone.
fn into_vec<F: burn::tensor::Element>(t: FlexTensor) -> Vec<F> {
    t.into_data()
        .try_into_vec::<F>()
        .expect("the fused layer's own cache, in the layer's float type")
}

fn tensor<F: burn::tensor::Element>(values: Vec<F>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The sizes of a call on `x` (`[..., d_in]`, its leading axes the members' rows).
fn dims(x: &FlexTensor, w: &FlexTensor, members: usize) -> Dims {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    let rows: usize = xs[..xs.len() - 1].iter().product();
    Dims {
        members,
        batch: rows / members,
        d_in: xs[xs.len() - 1],
        d_out: ws[1],
    }
}

/// `x`'s shape with its last axis replaced by `last`.
fn with_last(x: &FlexTensor, last: usize) -> Shape {
    let mut shape = x.layout().shape().clone();
    let n = shape.num_dims();
    shape[n - 1] = last;
    shape
}

/// The shape of an input gradient: `x`'s when it was computed, an empty `[0, d_in]` when not.
fn dx_shape(x: &FlexTensor, d: Dims, need_dx: bool) -> Shape {
    match need_dx {
        true => x.layout().shape().clone(),
        false => Shape::from([0, d.d_in]),
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
            other => panic!("the fused kernels support f32 and f64, got {other:?}"),
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
        members: usize,
    ) -> FlexTensor {
        let d = dims(&x, &w_hat, members);
        let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let eps = epsilon as F;
            let y = forward_values::<F>(values(&x), values(&w_hat), values(&m_hat), values(&gate), eps, d);
            tensor(y, with_last(&x, d.d_out))
        })
    }

    fn fused_nalu_with_cache(
        x: FlexTensor,
        w_hat: FlexTensor,
        m_hat: FlexTensor,
        gate: FlexTensor,
        epsilon: f64,
        members: usize,
    ) -> (FlexTensor, FlexTensor) {
        let d = dims(&x, &w_hat, members);
        let [x, w_hat, m_hat, gate] = [x, w_hat, m_hat, gate].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let eps = epsilon as F;
            let (y, cache) = forward::<F>(values(&x), values(&w_hat), values(&m_hat), values(&gate), eps, d);
            let len = cache.len();
            (tensor(y, with_last(&x, d.d_out)), tensor(cache, [1, len]))
        })
    }

    fn fused_nalu_backward(
        x: FlexTensor,
        cache: FlexTensor,
        gate: FlexTensor,
        epsilon: f64,
        dy: FlexTensor,
        need_dx: bool,
        members: usize,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let d = dims(&x, &gate, members);
        let [x, gate, dy] = [x, gate, dy].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let eps = epsilon as F;
            let mut cache = into_vec::<F>(cache);
            let (dx, dw, dm, dg) = backward::<F>(
                values(&x), &mut cache, values(&gate), eps, values(&dy), d, need_dx,
            );
            recycle(cache);
            let weights = [d.members * d.d_in, d.d_out];
            (tensor(dx, dx_shape(&x, d, need_dx)), tensor(dw, weights), tensor(dm, weights), tensor(dg, weights))
        })
    }
}

impl FusedLinear for Flex {
    fn fused_linear(x: FlexTensor, w: FlexTensor, members: usize) -> FlexTensor {
        let d = dims(&x, &w, members);
        let [x, w] = [x, w].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let y = linear_forward::<F>(values(&x), values(&w), d);
            tensor(y, with_last(&x, d.d_out))
        })
    }

    fn fused_linear_backward(
        x: FlexTensor,
        w: FlexTensor,
        dy: FlexTensor,
        need_dx: bool,
        members: usize,
    ) -> (FlexTensor, FlexTensor) {
        let d = dims(&x, &w, members);
        let [x, w, dy] = [x, w, dy].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let (dx, dw) = linear_backward::<F>(values(&x), values(&w), values(&dy), d, need_dx);
            (tensor(dx, dx_shape(&x, d, need_dx)), tensor(dw, [d.members * d.d_in, d.d_out]))
        })
    }
}

impl FusedNmu for Flex {
    fn fused_nmu_product(x: FlexTensor, w: FlexTensor, members: usize) -> FlexTensor {
        let d = dims(&x, &w, members);
        let [x, w] = [x, w].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let z = nmu_forward::<F>(values(&x), values(&w), d);
            tensor(z, with_last(&x, d.d_out))
        })
    }

    fn fused_nmu_product_backward(
        x: FlexTensor,
        w: FlexTensor,
        dz: FlexTensor,
        need_dx: bool,
        members: usize,
    ) -> (FlexTensor, FlexTensor) {
        let d = dims(&x, &w, members);
        let [x, w, dz] = [x, w, dz].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let (dx, dw) = nmu_backward::<F>(values(&x), values(&w), values(&dz), d, need_dx);
            (tensor(dx, dx_shape(&x, d, need_dx)), tensor(dw, [d.members * d.d_in, d.d_out]))
        })
    }
}

impl FusedLogAbs for Flex {
    fn fused_clamped_log_abs(x: FlexTensor, epsilon: f64) -> FlexTensor {
        let x = contiguous(x);
        by_dtype!(x.dtype(), F => {
            let y = clamped_log_abs::<F>(values(&x), epsilon as F);
            tensor(y, x.layout().shape().clone())
        })
    }

    fn fused_clamped_log_abs_backward(x: FlexTensor, dy: FlexTensor, epsilon: f64) -> FlexTensor {
        let [x, dy] = [x, dy].map(contiguous);
        by_dtype!(x.dtype(), F => {
            let dx = clamped_log_abs_backward::<F>(values(&x), values(&dy), epsilon as F);
            tensor(dx, x.layout().shape().clone())
        })
    }
}
