//! The lab's trainer on Burn's wgpu backend (a GPU, or Mesa's lavapipe on the CPU where there
//! is none): a short population training run, as on flex. f32 only: WGSL has no f64.
//!
//! `cargo test --features wgpu --test wgpu` (CI installs lavapipe, `mesa-vulkan-drivers`).

use burn::tensor::{Device, DeviceKind};
use burn_nalu_lab::{
    Budget, ModelKind, Operation, ReferenceTask, Task, TrainConfig, TrainedRun, train_population,
};

fn gpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

fn cpu() -> Device {
    Device::flex()
}

/// Two seeds of NAU → NAU train on wgpu through the experiments' loop (the generic path: Burn
/// ops, the optimizer's tensor form, losses watched on the device) as they do on flex: 200 Adam
/// steps cut each seed's validation MSE of `a + b` at least tenfold on both. The values are not
/// compared: each backend draws the initial weights from its own random numbers (the step-0
/// validation MSEs of one run here: 2491 on wgpu, 2459 on flex), and the trajectories part
/// from there. Lavapipe runs a step in a fraction of a second; a run to success would take
/// minutes.
#[test]
fn a_population_trains_on_wgpu_as_on_flex() {
    let task = ReferenceTask { rows: 256 };
    let config = TrainConfig {
        budget: Budget::Steps(200),
        eval_every: Some(200),
        regularizer: None,
        ..TrainConfig::recipe(ModelKind::Nau, Operation::Add)
    };
    let train = |device: &Device| -> Vec<TrainedRun> {
        let data = (0..2).map(|seed| task.data(Operation::Add, seed)).collect();
        train_population(data, &config, device, &mut |_| {}).unwrap()
    };
    for (g, c) in train(&gpu()).iter().zip(train(&cpu())) {
        let (start, end) = (g.history[0].valid_mse, g.result.valid_mse);
        assert!(end < start / 10.0, "wgpu: {start} → {end}");
        let (start, end) = (c.history[0].valid_mse, c.result.valid_mse);
        assert!(end < start / 10.0, "flex: {start} → {end}");
    }
}
