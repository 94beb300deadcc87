//! One optimizer step of every run of a population.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use crate::Population;
use crate::experiments::config::{RunOptimizer, TrainConfig};
use crate::experiments::model::Model;

/// What one population step returns.
pub(super) struct StepOutput<M: Model> {
    pub(super) model: Population<M>,
    /// Each run's loss (`MSE + λ·R`), read before the update.
    pub(super) losses: Vec<f64>,
    /// Each run's batch MSE, read on evaluation steps and for the stall rule.
    pub(super) mses: Option<Vec<f64>>,
}

/// One step of every run: the losses, backward, per-run gradient clipping, an optimizer step
/// and the units' clamps. Runs whose loss is not finite are updated too; the caller restores
/// them.
pub(super) fn population_step<M: Model>(
    model: Population<M>,
    optim: &mut RunOptimizer,
    (x, y): (Tensor<3>, Tensor<3>),
    config: &TrainConfig,
    weights: &[f64],
    read_mse: bool,
) -> StepOutput<M> {
    let members = model.members();
    let err = model.forward(x).sub(y);
    let square = err.clone().mul(err);
    let mse = member_means(square, members);
    let loss = match model.regularizer() {
        Some(reg) if weights.iter().any(|&w| w > 0.0) => match members {
            1 => mse.clone().add(reg.mul_scalar(weights[0])),
            s => {
                let w = TensorData::new(weights.to_vec(), [s]);
                mse.clone()
                    .add(reg.mul(Tensor::<1>::from_data(w, &mse.device())))
            }
        },
        _ => mse.clone(),
    };
    let host = |t: Tensor<1>| {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float losses")
    };
    let losses = host(loss.clone());
    let mses = read_mse.then(|| host(mse));
    let total = if members == 1 { loss } else { loss.sum() };
    let mut grads = GradientsParams::from_grads(total.backward(), &model);
    if let Some(max_norm) = config.clip_norm {
        grads = clip_per_member(grads, &model, max_norm);
    }
    let model = optim.step(config.lr, model, grads).clamp_weights();
    StepOutput {
        model,
        losses,
        mses,
    }
}

/// Scales each member's part of each parameter's gradient to an L2 norm of at most
/// `max_norm`, as Burn's norm clipping does for one parameter of one model.
fn clip_per_member<M: Model>(
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

/// Each member's mean of `[members, rows, outputs]`, `[members]`. One run keeps the plain mean
/// over all of its batch, the ops a single model has always run; a population the mean over
/// rows (and then over outputs, equal in number for every row).
fn member_means(square: Tensor<3>, members: usize) -> Tensor<1> {
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
