//! One training step of a population: each member's loss, and its gradients clipped alone.
//! The lab's trainer takes the same step (through `burn_nalu::internals`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::{ArithmeticUnit, Population};

/// Scales each member's part of each parameter's gradient to an L2 norm of at most
/// `max_norm`, as Burn's norm clipping does for one parameter of one model.
pub fn clip_per_member<M: ArithmeticUnit>(
    mut grads: GradientsParams,
    model: &Population<M>,
    max_norm: f32,
) -> GradientsParams {
    struct Clip<'a> {
        grads: &'a mut GradientsParams,
        members: usize,
        max_norm: f64,
    }
    impl ModuleVisitor for Clip<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(grad) = self.grads.remove::<D>(param.id) else {
                return;
            };
            let shape = grad.shape();
            let s = self.members;
            let per_member = grad.clone().reshape([s, shape.num_elements() / s]);
            let norm = per_member.clone().square().sum_dim(1).sqrt();
            // Burn's rule: g·max/(‖g‖ + 1e-6) when ‖g‖ > max, g otherwise.
            let scale = norm
                .clone()
                .add_scalar(1e-6)
                .recip()
                .mul_scalar(self.max_norm)
                .mask_fill(norm.lower_equal_elem(self.max_norm), 1.0);
            let clipped = per_member.mul(scale).reshape(shape);
            self.grads.register::<D>(param.id, clipped);
        }
    }
    let members = model.members();
    model.visit(&mut Clip {
        grads: &mut grads,
        members,
        max_norm: max_norm as f64,
    });
    grads
}

/// Clamps every element of every gradient to `[−max_value, max_value]` (PyTorch's
/// `clip_grad_value_`, which nalm-benchmark runs the iNALU with); element-wise, so each member's
/// gradients are clipped alone.
pub fn clip_values<M: ArithmeticUnit>(
    mut grads: GradientsParams,
    model: &Population<M>,
    max_value: f32,
) -> GradientsParams {
    struct Clip<'a> {
        grads: &'a mut GradientsParams,
        max_value: f64,
    }
    impl ModuleVisitor for Clip<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                let clipped = grad.clamp(-self.max_value, self.max_value);
                self.grads.register::<D>(param.id, clipped);
            }
        }
    }
    model.visit(&mut Clip {
        grads: &mut grads,
        max_value: max_value as f64,
    });
    grads
}

/// Each member's mean of `[members, rows, outputs]`, `[members]`. One run keeps the plain mean
/// over all of its batch, the ops a single model has always run; a population the mean over
/// rows (and then over outputs, equal in number for every row).
pub fn member_means(square: Tensor<3>, members: usize) -> Tensor<1> {
    if members == 1 {
        return square.mean();
    }
    let rows = square.mean_dim(1);
    let all = match rows.dims()[2] {
        1 => rows,
        _ => rows.mean_dim(2),
    };
    all.reshape([members])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NauConfig;
    use burn::tensor::Device;

    /// Every element of every member's gradient is clamped alone: those inside ±v unchanged,
    /// the others at ±v exactly.
    #[test]
    fn clip_values_clamps_each_element() {
        let device = Device::default().autodiff();
        let population = Population::init(0..2, &device, |d| NauConfig::new(3, 2).init(d));
        let x = Tensor::<3>::from_floats([[[4.0, -0.01, 2.0]], [[0.03, -5.0, 1.0]]], &device);
        let grads = population.forward(x).sum().backward();
        let grads = GradientsParams::from_grads(grads, &population);
        let weight = population.unit.weight.clone();
        let before: Tensor<2> = grads.get(weight.id).unwrap();
        let before = before.into_data().try_to_vec::<f32>().unwrap();
        // Each output's gradient is its input: 4, −0.01, 2 and 0.03, −5, 1, twice.
        assert_eq!(
            before,
            [
                4.0, 4.0, -0.01, -0.01, 2.0, 2.0, 0.03, 0.03, -5.0, -5.0, 1.0, 1.0
            ]
        );
        let clipped = clip_values(grads, &population, 1.5);
        let after: Tensor<2> = clipped.get(weight.id).unwrap();
        let after = after.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(
            after,
            [
                1.5, 1.5, -0.01, -0.01, 1.5, 1.5, 0.03, 0.03, -1.5, -1.5, 1.0, 1.0
            ]
        );
    }
}
