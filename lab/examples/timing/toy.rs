//! The training steps the timing example times, through the experiments' own [`Trainer`], for a population of `members`
//! seeds (1: a single run); no evaluation runs between steps.
//!
//! - The static toy: `Nalu(100 → 2)`, `Nalu(2 → 1)`, batch 64 of the reference task's rows, MSE,
//!   backward, RMSProp. The learning rate (1e-4) is small enough that no run diverges over a
//!   benchmark's tens of thousands of steps: a diverged run is restored after every step, which
//!   costs extra.
//! - Madsen & Johansen's `×`: NAU(100 → 2) → NMU(2 → 1) on a fresh batch of 128 rows from
//!   U[1, 2) each step (drawn and summed into targets inside the step), Adam, their recipe.

use burn::tensor::Device;
use burn_nalu_lab::{
    Budget, MadsenTask, ModelKind, Operation, ReferenceTask, Task, TrainConfig, Trainer,
};

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

/// A trainer of `members` runs of Madsen & Johansen's `a · b` with NAU → NMU, seeds
/// `0..members`.
#[allow(dead_code)] // `benches/units.rs` times the toy only.
pub fn madsen_trainer(members: usize, device: &Device) -> Trainer {
    let task = MadsenTask::default();
    let data = (0..members as u64)
        .map(|seed| task.data(Operation::Mul, seed))
        .collect();
    let never = 1 << 40;
    let config = TrainConfig {
        budget: Budget::Steps(never),
        eval_every: Some(never),
        ..TrainConfig::madsen(ModelKind::NauNmu)
    };
    Trainer::new(data, &config, device).expect("valid benchmark settings")
}
