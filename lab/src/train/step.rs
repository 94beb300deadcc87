//! One optimizer step of every run of a population.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use crate::config::{RunOptimizer, TrainConfig};
use crate::model::Model;
use burn_nalu::Population;
use burn_nalu::internals::{clip_per_member, clip_values, member_means};

/// What one population step returns.
pub(super) struct StepOutput<M: Model> {
    pub(super) model: Population<M>,
    /// Each run's loss (`MSE + λ·R`) before the update, `[runs]`, on the device.
    pub(super) losses: Tensor<1>,
    /// Each run's batch MSE, read on evaluation steps and for the stall rule.
    pub(super) mses: Option<Vec<f64>>,
}

/// One step of every run: the losses, backward, per-run gradient clipping, an optimizer step
/// and the units' clamps. Runs whose loss is not finite are updated too; the caller restores
/// them.
/// The weights of the penalties at one step: each run's regulariser weight, and `β` of the L1
/// penalty (0: none).
pub(super) struct Penalties<'a> {
    pub(super) regularizer: &'a [f64],
    pub(super) l1: f64,
}

pub(super) fn population_step<M: Model>(
    model: Population<M>,
    optim: &mut RunOptimizer,
    (x, y): (Tensor<3>, Tensor<3>),
    config: &TrainConfig,
    penalties: Penalties,
    read_mse: bool,
) -> StepOutput<M> {
    let weights = penalties.regularizer;
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
    let loss = match penalties.l1 {
        0.0 => loss,
        beta => loss.add(member_l1(&model).mul_scalar(beta)),
    };
    let host = |t: Tensor<1>| {
        t.into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float losses")
    };
    let losses = loss.clone().detach();
    let mses = read_mse.then(|| host(mse));
    let total = if members == 1 { loss } else { loss.sum() };
    let mut grads = GradientsParams::from_grads(total.backward(), &model);
    if let Some(max_norm) = config.clip_norm {
        grads = clip_per_member(grads, &model, max_norm);
    }
    if let Some(max_value) = config.clip_value {
        grads = clip_values(grads, &model, max_value);
    }
    let model = optim.step(config.lr, model, grads).clamp_weights();
    StepOutput {
        model,
        losses,
        mses,
    }
}

/// Each member's `Σ|p|` over every parameter, `[members]`.
fn member_l1<M: Model>(model: &Population<M>) -> Tensor<1> {
    struct Sum {
        members: usize,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let (s, n) = (self.members, t.shape().num_elements());
            let own = t.reshape([s, n / s]).abs().sum_dim(1).reshape([s]);
            self.total = Some(match self.total.take() {
                Some(total) => total.add(own),
                None => own,
            });
        }
    }
    let mut sum = Sum {
        members: model.members(),
        total: None,
    };
    model.visit(&mut sum);
    sum.total.expect("a model with parameters")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InitScheme, LabModel, ModelKind};
    use burn::tensor::Device;

    /// The L1 penalty of each member is its own `Σ|p|`, here recomputed on the host.
    #[test]
    fn each_member_pays_the_l1_of_its_own_parameters() {
        let device = Device::default();
        let init = |d: &Device| LabModel::init(ModelKind::NauNmu, InitScheme::Madsen, 6, 2, d);
        let population = Population::init(0..3, &device, init);
        let got = member_l1(&population)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (k, got) in got.iter().enumerate() {
            let mut want = 0.0f64;
            let member = population.member(k);
            let LabModel::NauNmu(stack) = member else {
                unreachable!()
            };
            for w in [stack.hidden.weight.val(), stack.output.weight.val()] {
                let v = w.into_data().try_to_vec::<f32>().unwrap();
                want += v.iter().map(|x| x.abs() as f64).sum::<f64>();
            }
            // 14 terms below 1, summed in f32: a few ulps of the sum.
            assert!(
                (*got as f64 - want).abs() < 1e-5,
                "member {k}: {got} vs {want}"
            );
        }
    }
}
