//! The autodiff nodes of the fused ops: their backward passes call the inner backend's kernels.

use burn::backend::Autodiff;
use burn::backend::Backend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::{FusedLinear, FusedLogAbs, FusedNalu, FusedNmu};

/// The autodiff node of the fused layer: its backward calls the inner backend's kernel.
#[derive(Debug)]
struct FusedNaluBackward;

impl<B: Backend + FusedNalu> Backward<B, 4> for FusedNaluBackward {
    /// The input `x`, the gate weights, the forward's cache, epsilon and the member count.
    type State = (
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        f64,
        usize,
    );

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, gate, cache, eps, members) = ops.state;
        let need_dx = ops.parents[0].is_some();
        let (dx, dw, dm, dg) = B::fused_nalu_backward(x, cache, gate, eps, dy, need_dx, members);
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
        members: usize,
    ) -> FloatTensor<Self> {
        let [a, b, c, d] = [&x, &w_hat, &m_hat, &gate].map(|t| t.primitive().clone());
        match FusedNaluBackward
            .prepare::<C>([x.node(), w_hat.node(), m_hat.node(), gate.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gate) = (a.clone(), d.clone());
                let (y, cache) = B::fused_nalu_with_cache(a, b, c, d, epsilon, members);
                prep.finish((x, gate, cache, epsilon, members), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_nalu(a, b, c, d, epsilon, members)),
        }
    }

    fn fused_nalu_with_cache(
        _x: FloatTensor<Self>,
        _w_hat: FloatTensor<Self>,
        _m_hat: FloatTensor<Self>,
        _gate: FloatTensor<Self>,
        _epsilon: f64,
        _members: usize,
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
        _members: usize,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        panic!("the fused NALU backward is not differentiable (no second-order gradients)");
    }
}

/// The backward kernel of an op of an input and a weight applied member by member:
/// `(x, W, dy, need_dx, members) → (dx, dW)`.
type MemberwiseKernel<B> = fn(
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    bool,
    usize,
) -> (FloatTensor<B>, FloatTensor<B>);

/// The autodiff node of such an op (the fused linear map, the NMU product): its backward calls
/// the inner backend's kernel.
struct MemberwiseBackward<B: Backend>(MemberwiseKernel<B>);

impl<B: Backend> core::fmt::Debug for MemberwiseBackward<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MemberwiseBackward")
    }
}

impl<B: Backend> Backward<B, 2> for MemberwiseBackward<B> {
    /// The input `x`, the weight `W` and the member count.
    type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, members) = ops.state;
        let need_dx = ops.parents[0].is_some();
        let (dx, dw) = (self.0)(x, w, dy, need_dx, members);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dw]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// `forward(x, W, members)` of the inner backend, recorded with `backward` as its node.
fn memberwise<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    w: FloatTensor<Autodiff<B, C>>,
    members: usize,
    forward: fn(FloatTensor<B>, FloatTensor<B>, usize) -> FloatTensor<B>,
    backward: MemberwiseKernel<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let (a, b) = (x.primitive().clone(), w.primitive().clone());
    match MemberwiseBackward(backward)
        .prepare::<C>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (a.clone(), b.clone(), members);
            prep.finish(state, forward(a, b, members))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(a, b, members)),
    }
}

impl<B: Backend + FusedLinear, C: CheckpointStrategy> FusedLinear for Autodiff<B, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        members: usize,
    ) -> FloatTensor<Self> {
        memberwise::<B, C>(x, w, members, B::fused_linear, B::fused_linear_backward)
    }

    fn fused_linear_backward(
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _need_dx: bool,
        _members: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        panic!("the fused linear backward is not differentiable (no second-order gradients)");
    }
}

impl<B: Backend + FusedNmu, C: CheckpointStrategy> FusedNmu for Autodiff<B, C> {
    fn fused_nmu_product(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        members: usize,
    ) -> FloatTensor<Self> {
        memberwise::<B, C>(
            x,
            w,
            members,
            B::fused_nmu_product,
            B::fused_nmu_product_backward,
        )
    }

    fn fused_nmu_product_backward(
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _dz: FloatTensor<Self>,
        _need_dx: bool,
        _members: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        panic!("the fused NMU backward is not differentiable (no second-order gradients)");
    }
}

/// The autodiff node of the fused clamped logarithm: its backward calls the inner backend's
/// kernel.
#[derive(Debug)]
struct FusedLogAbsBackward;

impl<B: Backend + FusedLogAbs> Backward<B, 1> for FusedLogAbsBackward {
    /// The input `x` and epsilon.
    type State = (B::FloatTensorPrimitive, f64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, eps) = ops.state;
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<B>(node.id, B::fused_clamped_log_abs_backward(x, dy, eps));
        }
    }
}

impl<B: Backend + FusedLogAbs, C: CheckpointStrategy> FusedLogAbs for Autodiff<B, C> {
    fn fused_clamped_log_abs(x: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        let a = x.primitive().clone();
        match FusedLogAbsBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_clamped_log_abs(a.clone(), epsilon);
                prep.finish((a, epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_clamped_log_abs(a, epsilon)),
        }
    }

    fn fused_clamped_log_abs_backward(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _epsilon: f64,
    ) -> FloatTensor<Self> {
        panic!("the fused logarithm's backward is not differentiable (no second-order gradients)");
    }
}
