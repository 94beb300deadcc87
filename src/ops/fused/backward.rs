//! The autodiff nodes of the fused ops: their backward passes call the inner backend's kernels.

use burn::backend::Autodiff;
use burn::backend::Backend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::{FusedLinear, FusedNalu};

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

/// The autodiff node of the fused linear map: its backward calls the inner backend's kernel.
#[derive(Debug)]
struct FusedLinearBackward;

impl<B: Backend + FusedLinear> Backward<B, 2> for FusedLinearBackward {
    /// The input `x`, the weight `W` and the member count.
    type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, members) = ops.state;
        let need_dx = ops.parents[0].is_some();
        let (dx, dw) = B::fused_linear_backward(x, w, dy, need_dx, members);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dw]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FusedLinear, C: CheckpointStrategy> FusedLinear for Autodiff<B, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        members: usize,
    ) -> FloatTensor<Self> {
        let (a, b) = (x.primitive().clone(), w.primitive().clone());
        match FusedLinearBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (a.clone(), b.clone(), members);
                prep.finish(state, B::fused_linear(a, b, members))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_linear(a, b, members)),
        }
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
