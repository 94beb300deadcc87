//! The static toy's training step as the speed benchmarks time it (`benches/units.rs` and
//! `examples/timing.rs` include this file): `Nalu(100 → 2)`, `Nalu(2 → 1)`, batch 64 of the
//! reference task's rows, MSE, backward, RMSProp, for a population of `members` seeds (1: a
//! single run), through the experiments' own [`Trainer`]. No evaluation runs between steps. The
//! learning rate (1e-4) is small enough that no run diverges over a benchmark's tens of
//! thousands of steps: a diverged run is restored after every step, which costs extra.

use burn::tensor::Device;
use burn_nalu::experiments::{Budget, Operation, ReferenceTask, Task, TrainConfig, Trainer};

/// A trainer of `members` runs of the toy task, seeds `0..members`.
pub fn toy_trainer(members: usize, device: &Device) -> Trainer {
    let task = ReferenceTask::default();
    let data = (0..members as u64)
        .map(|seed| task.data(Operation::Add, seed))
        .collect();
    let never = 1 << 40;
    let config = TrainConfig {
        lr: 1e-4,
        budget: Budget::Steps(never),
        eval_every: Some(never),
        ..TrainConfig::reference(Operation::Add)
    };
    Trainer::new(data, &config, device).expect("valid benchmark settings")
}
