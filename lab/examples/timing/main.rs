//! Times the two benchmark cases on the default device and prints one JSON line, for
//! `bench/compare.sh` (which sets the thread counts).
//! Each time is the median over ten blocks of iterations (after a warm-up), as in the
//! PyTorch and Keras scripts (`bench/blocks.py`): a median shrugs off the bursts of a shared
//! machine.
//!
//! - `toy_step_s`: one static-toy training step (`Nalu(100→2)`, `Nalu(2→1)`, batch 64: forward,
//!   MSE, backward, RMSProp, reading the loss), the step `burn_nalu_lab::Trainer` runs.
//! - `population_step_s`: the same step for a population of `population` seeds (100) trained as
//!   one model; `population / population_step_s` is its seed-steps per second, against
//!   `1 / toy_step_s` for seeds trained one after another.
//! - `madsen_population_step_s`: one step of Madsen & Johansen's `a · b` (NAU → NMU, a fresh
//!   batch of 128 from U[1, 2) drawn each step, Adam) for a population of 100 seeds; and
//!   `madsen_step_s`, the same for one seed.
//! - `large_fwd_bwd_s`: forward and backward with weight gradients of `Nalu(1024→1024)` on a
//!   batch of 4096.
//!
//! `--quick` runs few iterations (a smoke test); `--toy`, `--population`, `--madsen` or `--large`
//! runs only those cases; `--members N` sets the populations' size (100).

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::NaluConfig;
use burn_nalu_lab::Trainer;

mod toy;

/// Seeds in the population cases, unless `--members N` says otherwise.
const POPULATION: usize = 100;

/// Median over ten blocks of the mean time of one call of `f`, `per_block` calls a block.
fn median_seconds(mut f: impl FnMut(), per_block: usize, warmup: usize) -> f64 {
    const BLOCKS: usize = 10;
    (0..warmup).for_each(|_| f());
    let mut blocks: Vec<f64> = (0..BLOCKS)
        .map(|_| {
            let start = Instant::now();
            (0..per_block).for_each(|_| f());
            start.elapsed().as_secs_f64() / per_block as f64
        })
        .collect();
    blocks.sort_by(f64::total_cmp);
    (blocks[BLOCKS / 2 - 1] + blocks[BLOCKS / 2]) / 2.0
}

fn step_seconds(mut trainer: Trainer, per_block: usize, warmup: usize) -> f64 {
    median_seconds(
        || {
            trainer.step();
        },
        per_block,
        warmup,
    )
}

fn toy_step_seconds(device: &Device, members: usize, per_block: usize, warmup: usize) -> f64 {
    step_seconds(toy::toy_trainer(members, device), per_block, warmup)
}

fn large_seconds(device: &Device, warmup: usize) -> f64 {
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
    median_seconds(fwd_bwd, 1, warmup)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let quick = has("--quick");
    let (mut toy, mut population, mut large) = (has("--toy"), has("--population"), has("--large"));
    let mut madsen = has("--madsen");
    if !(toy || population || large || madsen) {
        (toy, population, large, madsen) = (true, true, true, true);
    }
    // `--members N`: the population cases with N seeds (how the step scales with the population).
    let members = args
        .iter()
        .position(|a| a == "--members")
        .map(|i| {
            args[i + 1]
                .parse()
                .expect("--members takes a number of seeds")
        })
        .unwrap_or(POPULATION);
    let device = Device::default();
    let mut result = serde_json::json!({ "framework": format!("burn-nalu ({device:?})") });
    if toy {
        let (per_block, warmup) = if quick { (5, 10) } else { (500, 500) };
        result["toy_step_s"] = toy_step_seconds(&device, 1, per_block, warmup).into();
    }
    if population {
        let (per_block, warmup) = if quick { (2, 2) } else { (50, 50) };
        let seconds = toy_step_seconds(&device, members, per_block, warmup);
        result["population_step_s"] = seconds.into();
        result["population"] = members.into();
    }
    if madsen {
        let (per_block, warmup) = if quick { (2, 2) } else { (100, 100) };
        let trainer = toy::madsen_trainer(members, &device);
        result["madsen_population_step_s"] = step_seconds(trainer, per_block, warmup).into();
        result["population"] = members.into();
        let (per_block, warmup) = if quick { (5, 10) } else { (500, 500) };
        let trainer = toy::madsen_trainer(1, &device);
        result["madsen_step_s"] = step_seconds(trainer, per_block, warmup).into();
    }
    if large {
        let warmup = if quick { 0 } else { 2 };
        result["large_fwd_bwd_s"] = large_seconds(&device, warmup).into();
    }
    println!("{result}");
}
