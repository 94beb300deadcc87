//! The population step on the host, member by member, for the models whose layers all have host
//! kernels (`ops::host`: every unit of the experiments' static stacks).
//!
//! The generic step ([`super::step`]) draws the whole population's batch (1 MB for 20 members
//! of Madsen & Johansen's 128 rows of 100), then passes over it op by op through Burn's
//! autodiff, each pass mostly from L3. Here each member's batch is drawn, run forward and back,
//! and its gradient written while the batch (51 KB) is in cache; members run in order, or on
//! rayon's threads. The optimizer then updates every member in one pass over host memory, with
//! the rule and state of the generic step, and the units' clamps follow. The products are the
//! fused kernels' bits and the loss gradient is formed as Burn's backward forms it, so a model
//! without a regulariser trains to the same bits as on the generic step (the tests check the
//! NALU's); the regulariser and its gradient are the same formulas summed in another order, a
//! difference of rounding only (the tests compare NAU → NMU in f64).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Element, Tensor, TensorData};

use super::batches::Batches;
use super::step::{Penalties, StepOutput};
use crate::config::{RunOptimizer, TrainConfig};
use crate::model::Model;
use burn_nalu::Population;
use burn_nalu::backend;
use burn_nalu::internals::FastFloat;
use burn_nalu::internals::HostLayer;
use burn_nalu::internals::Recycle;
use burn_nalu::optim::HostFloat;

/// The host step of one population: its layers, in parameter order, and where each layer's
/// weights start among the model's parameters.
pub(super) struct HostStep {
    layers: Vec<HostLayer>,
    starts: Vec<usize>,
}

/// What a step reads and updates besides the model: [`HostStep::step`]'s arguments, the
/// optimizer, the batches, the config, the penalties, each member's seed of its random draws in
/// the step (the sNMU's noise), and whether to report each member's batch MSE.
pub(super) type StepArgs<'a, 'b> = (
    &'a mut RunOptimizer,
    &'a mut Batches,
    &'a TrainConfig,
    Penalties<'b>,
    &'a [u64],
    bool,
);

/// What one member's part of a step leaves: its loss (`MSE + λ·R`), its batch MSE and its
/// gradient of each weight, in parameter order.
struct MemberStep<F> {
    loss: f64,
    mse: f64,
    grads: Vec<Vec<F>>,
}

impl HostStep {
    /// The host step of `model`, where it has one: a model whose layers all have host kernels,
    /// trained on the host in f32 or f64, with a config that asks for nothing the host step
    /// lacks (per-run gradient clipping, by norm or by value; an L1 penalty). `None` otherwise:
    /// the generic step.
    pub(super) fn new<M: Model>(model: &Population<M>, config: &TrainConfig) -> Option<Self> {
        let layers = model.unit.host_layers(model.members())?;
        let values = parameters(model);
        let on_host = values.iter().all(|(_, t)| {
            backend::on_host(&t.device()) && matches!(t.dtype(), DType::F32 | DType::F64)
        });
        let plain =
            config.clip_norm.is_none() && config.clip_value.is_none() && config.l1.is_none();
        let (mut starts, mut at) = (Vec::with_capacity(layers.len()), 0);
        for layer in &layers {
            starts.push(at);
            at += layer.params();
        }
        (on_host && plain && values.len() == at).then_some(Self { layers, starts })
    }

    /// One step of every member of `model` on its next batch, as
    /// [`population_step`](super::step::population_step) makes it.
    pub(super) fn step<M: Model>(&self, model: Population<M>, args: StepArgs) -> StepOutput<M> {
        let params = parameters(&model);
        match params[0].1.dtype() {
            DType::F64 => self.step_as::<f64, M>(model, params, args),
            _ => self.step_as::<f32, M>(model, params, args),
        }
    }

    /// [`step`](Self::step) in `F`, the type of `params` (`model`'s, as [`parameters`] gives
    /// them).
    fn step_as<F: FastFloat + HostFloat + Element + Recycle, M: Model>(
        &self,
        model: Population<M>,
        params: Vec<(ParamId, Tensor<1>)>,
        (optim, batches, config, penalties, noise_seeds, read_mse): StepArgs,
    ) -> StepOutput<M> {
        let members = model.members();
        let device = params[0].1.device();
        let mut weights: Vec<Vec<F>> = (params.iter())
            .map(|(_, t)| {
                t.clone()
                    .into_data()
                    .convert::<F>()
                    .try_into_vec::<F>()
                    .expect("floats")
            })
            .collect();
        let steps = batches.each_run(|k, x, y| {
            let own: Vec<&[F]> = (weights.iter())
                .map(|w| &w[k * w.len() / members..][..w.len() / members])
                .collect();
            let (lambda, seed) = (penalties.regularizer[k], noise_seeds[k]);
            self.member_step(&own, (&F::from_f32s(x), &F::from_f32s(y)), lambda, seed)
        });
        let mut grads: Vec<Vec<F>> = weights
            .iter()
            .map(|w| Vec::with_capacity(w.len()))
            .collect();
        for step in &steps {
            for (all, own) in grads.iter_mut().zip(&step.grads) {
                all.extend_from_slice(own);
            }
        }
        let mut updates: Vec<(ParamId, &mut [F], &[F])> = (params.iter().zip(&mut weights))
            .zip(&grads)
            .map(|(((id, _), w), g)| (*id, &mut w[..], &g[..]))
            .collect();
        let stepped = optim.step_host(config.lr, &mut updates);
        assert!(stepped, "a host step's optimizer does not clip gradients");
        for (layer, &at) in self.layers.iter().zip(&self.starts) {
            layer.clamp(&mut weights[at..at + layer.params()]);
        }
        let losses: Vec<f64> = steps.iter().map(|s| s.loss).collect();
        StepOutput {
            model: replace_parameters(model, weights),
            losses: Tensor::from_data(TensorData::new(losses, [members]), &device),
            mses: read_mse.then(|| steps.iter().map(|s| s.mse).collect()),
        }
    }

    /// One member's loss and gradients on its batch `(x, y)`, its regulariser weighted by
    /// `lambda` (0: none), its random draws seeded with `seed`; `w` holds the member's weights in
    /// parameter order. (Taking the rows in blocks that stay in L1 was slower, measured: the
    /// kernels' fixed costs four times over.)
    fn member_step<F: FastFloat + Recycle + Element>(
        &self,
        w: &[&[F]],
        (x, y): (&[F], &[F]),
        lambda: f64,
        seed: u64,
    ) -> MemberStep<F> {
        // Each layer's weights: its run of `w`.
        let own: Vec<&[&[F]]> = (self.layers.iter().zip(&self.starts))
            .map(|(layer, &at)| &w[at..at + layer.params()])
            .collect();
        // outs[l]: layer l's output; layer l reads x (l = 0) or outs[l − 1].
        let (mut outs, mut caches) = (Vec::<Vec<F>>::new(), Vec::new());
        for (layer, w) in self.layers.iter().zip(&own) {
            let (out, cache) = layer.forward(outs.last().map_or(x, |o| &o[..]), w, seed);
            outs.push(out);
            caches.push(cache);
        }
        let z = outs.pop().expect("a layer");
        let n = F::from(z.len()).expect("a count");
        // `dy = 2·(e·(1/n))` with `1/n` rounded from f64, as Burn's mean and product backward
        // compute it: the same bits as the generic step also where `n` (an epoch's last batch
        // of fixed rows) is not a power of two.
        let inv_n = F::from(1.0 / z.len() as f64).expect("a count");
        let (mut sum, mut dy) = (F::zero(), Vec::with_capacity(z.len()));
        for (&z, &y) in z.iter().zip(y) {
            let e = z - y;
            sum = sum + e * e;
            let g = inv_n * e;
            dy.push(g + g);
        }
        let mse = to_f64(sum / n);
        let mut grads = vec![Vec::new(); self.layers.len()];
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let input = if l == 0 { x } else { &outs[l - 1][..] };
            let (dx, dw) = layer.backward((input, own[l], &dy), &mut caches[l], l > 0);
            (grads[l], dy) = (dw, dx);
        }
        let mut penalty = 0.0;
        if lambda > 0.0 {
            let scale = F::from(lambda).expect("a finite weight");
            for ((layer, w), dw) in self.layers.iter().zip(&own).zip(&mut grads) {
                penalty += to_f64(layer.regularizer(w, scale, dw));
            }
        }
        MemberStep {
            loss: mse + lambda * penalty,
            mse,
            grads: grads.into_iter().flatten().collect(),
        }
    }
}

/// `v` as an f64 (outside [`HostStep::member_step`], whose `F` is also Burn's `Element`, which
/// has a `to_f64` of its own).
fn to_f64<F: FastFloat>(v: F) -> f64 {
    v.to_f64().expect("a float")
}

/// Each float parameter of `model`, in visiting order: its id and its value.
fn parameters<M: Model>(model: &Population<M>) -> Vec<(ParamId, Tensor<1>)> {
    struct Collect(Vec<(ParamId, Tensor<1>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // Off autodiff: Burn registers every op on an autodiff tensor in its graph, tracked or
            // not, and only a backward pass (never run here) frees the entries.
            let t = param.val().without_autodiff();
            let n = t.shape().num_elements();
            self.0.push((param.id, t.reshape([n])));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// `model` with its float parameters, in visiting order, set to `values` (each keeping its id
/// and shape; untracked, as the host step takes no gradient through Burn's autodiff).
fn replace_parameters<M: Model, F: Element>(
    model: Population<M>,
    values: Vec<Vec<F>>,
) -> Population<M> {
    struct Replace<F>(std::vec::IntoIter<Vec<F>>);
    impl<F: Element> ModuleMapper for Replace<F> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let values = self.0.next().expect("one value per parameter");
            // A fresh tracked leaf at every step would be an entry in the autodiff graph's
            // bookkeeping that only a backward pass (never run here) frees: 3 KB a step, measured.
            param.map(|t| Tensor::from_data(TensorData::new(values, t.shape()), &t.device()))
        }
    }
    model.map(&mut Replace(values.into_iter()))
}
