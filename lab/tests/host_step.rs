//! The host step (member by member through the fused kernels) against the generic step of Burn
//! ops, in f32: for the stacks without a regulariser, the same bits. (Its own test binary: the
//! population tests configure the CPU device to f64 for the whole process.)

#[path = "../../tests/common/mod.rs"]
mod common;

use burn::tensor::Tensor;
use burn_nalu_lab::{
    Budget, MadsenTask, ModelKind, Operation, ReferenceTask, Task, TaskData, TrainConfig,
    TrainedRun, train_population,
};
use common::parameters;

/// A task's data for one seed.
type DataOfSeed = fn(u64) -> TaskData;

/// The gated NALU → NALU, NAC → NAC, NAC → NAC• and NAU → sNMU train on the host step (member
/// by member through the fused kernels), and, clipped at a norm no gradient reaches (a scale of
/// exactly 1), on the generic step of Burn ops. Both compute the same values in the same order
/// (the fused kernels; the NAC weight with the standard library's `tanh` and `exp` as flex's ops
/// do; the sNMU's noise from the same generator, seeded by the run and the step; Burn's
/// backward formulas, and the loss gradient `2·(e·(1/n))` with `1/n` rounded from f64), and
/// without a regulariser nothing is summed in another order: the same bits in f32, every
/// parameter and every metric, also on the reference task's last batch of each epoch (40 rows,
/// where `1/n` is inexact) and with Adam on Madsen & Johansen's fresh batches (whose schedule
/// ramps the sNMU's regulariser in only from step 1,000,000).
#[test]
fn unregularized_host_steps_equal_the_generic_step_to_the_bit() {
    let device = burn::tensor::Device::default();
    assert_eq!(
        Tensor::<1>::zeros([1], &device).dtype(),
        burn::tensor::DType::F32,
        "the bits compared are f32's"
    );
    for model in [
        ModelKind::NauSnmu,
        ModelKind::Nalu,
        ModelKind::Nac,
        ModelKind::NacMul,
    ] {
        let reference = TrainConfig {
            model,
            budget: Budget::Steps(40),
            eval_every: Some(16),
            lr: 0.01,
            ..TrainConfig::reference(Operation::Add)
        };
        let madsen = TrainConfig {
            budget: Budget::Steps(40),
            eval_every: Some(20),
            ..TrainConfig::madsen(model)
        };
        let cases: [(TrainConfig, DataOfSeed); 2] = [
            (reference, |seed| {
                ReferenceTask::default().data(Operation::Add, seed)
            }),
            (madsen, |seed| {
                MadsenTask::default().data(Operation::Mul, seed)
            }),
        ];
        for (host, data) in cases {
            let generic = TrainConfig {
                clip_norm: Some(1e30),
                ..host.clone()
            };
            let train = |config: &TrainConfig| -> Vec<TrainedRun> {
                let data = (0..3).map(&data).collect();
                train_population(data, config, &device, &mut |_| {}).unwrap()
            };
            let (host_runs, generic_runs) = (train(&host), train(&generic));
            for (h, g) in host_runs.iter().zip(&generic_runs) {
                let what = format!("{model} {:?} seed {}", h.result.protocol, h.result.seed);
                assert_eq!(parameters(&h.model), parameters(&g.model), "{what}");
                let numbers = |r: &TrainedRun| {
                    [
                        r.result.train_mse,
                        r.result.valid_mse,
                        r.result.extrapolation_mse,
                    ]
                    .map(f64::to_bits)
                };
                assert_eq!(numbers(h), numbers(g), "{what}");
                assert_eq!(h.result.best_step, g.result.best_step, "{what}");
            }
        }
    }
}
