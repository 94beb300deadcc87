//! Times the two benchmark cases on the default device and prints one JSON line, for
//! `bench/compare.sh` (which sets the thread counts). `cargo bench` has the criterion version.
//!
//! - `toy_step_s`: one static-toy training step (`Nalu(100→2)`, `Nalu(2→1)`, batch 64: forward,
//!   MSE, backward, RMSProp, reading the loss), the step `experiments::train` runs.
//! - `large_fwd_bwd_s`: forward and backward with weight gradients of `Nalu(1024→1024)` on a
//!   batch of 4096.
//!
//! `--quick` runs few iterations (for tests); `--toy` or `--large` runs only that case.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::NaluConfig;
use burn_nalu::experiments::ToyStep;

fn toy_step_seconds(device: &Device, steps: usize, warmup: usize) -> f64 {
    let mut toy = ToyStep::new(device);
    (0..warmup).for_each(|_| {
        toy.step();
    });
    let start = Instant::now();
    (0..steps).for_each(|_| {
        toy.step();
    });
    start.elapsed().as_secs_f64() / steps as f64
}

fn large_seconds(device: &Device, iters: usize, warmup: usize) -> f64 {
    let ad = device.clone().autodiff();
    ad.seed(0);
    let layer = NaluConfig::new(1024, 1024).init(&ad);
    let x = Tensor::<2>::random([4096, 1024], Distribution::Default, &ad);
    let fwd_bwd = || {
        let grads = layer.forward(x.clone()).sum().backward();
        // Reading one value of each gradient makes sure every kernel has run.
        for g in [
            &layer.nac.w_hat,
            &layer.nac.m_hat,
            layer.gate.as_ref().unwrap(),
        ] {
            g.grad(&grads)
                .unwrap()
                .slice([0..1, 0..1])
                .into_scalar::<f32>();
        }
    };
    (0..warmup).for_each(|_| fwd_bwd());
    let start = Instant::now();
    (0..iters).for_each(|_| fwd_bwd());
    start.elapsed().as_secs_f64() / iters as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let quick = has("--quick");
    let (toy, large) = match (has("--toy"), has("--large")) {
        (false, false) => (true, true),
        flags => flags,
    };
    let device = Device::default();
    let mut result = serde_json::json!({ "framework": format!("burn-nalu ({device:?})") });
    if toy {
        let (steps, warmup) = if quick { (50, 10) } else { (5000, 500) };
        result["toy_step_s"] = toy_step_seconds(&device, steps, warmup).into();
    }
    if large {
        let (iters, warmup) = if quick { (1, 0) } else { (10, 2) };
        result["large_fwd_bwd_s"] = large_seconds(&device, iters, warmup).into();
    }
    println!("{result}");
}
