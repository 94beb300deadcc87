//! A population's seeded initial weights do not depend on what other threads draw meanwhile.
//! (Its own test binary: the thread drawing here would disturb other tests that seed Burn's
//! process-wide generator.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::{InaluConfig, NaluConfig, NauConfig, NmuConfig, Population, RealNpuConfig};
use common::parameters;

/// Populations of seeds 0..6 of units drawing with each kind of initializer the crate uses
/// (NALU and RealNPU: Xavier-uniform; NAU and NMU: uniform; iNALU: normal).
fn populations(device: &Device) -> Vec<Vec<f64>> {
    let seeds = || 0..6;
    vec![
        parameters(&Population::init(seeds(), device, |d| {
            NaluConfig::new(10, 2).init(d)
        })),
        parameters(&Population::init(seeds(), device, |d| {
            NauConfig::new(10, 2).init(d)
        })),
        parameters(&Population::init(seeds(), device, |d| {
            NmuConfig::new(10, 2).init(d)
        })),
        parameters(&Population::init(seeds(), device, |d| {
            InaluConfig::new(10, 2).init(d)
        })),
        parameters(&Population::init(seeds(), device, |d| {
            RealNpuConfig::new(10, 2).init(d)
        })),
    ]
}

/// Built while another thread keeps drawing from Burn's process-wide generator (which the
/// crate's seeding used to share), the populations are the same, to the bit, as built alone.
#[test]
fn populations_are_the_same_while_another_thread_draws() {
    let device = Device::default();
    let alone = populations(&device);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let _ = Tensor::<1>::random([64], Distribution::Default, &device);
            }
        });
        // Stops the drawing thread also when an assertion fails (the scope joins it).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&done);
        for round in 0..20 {
            assert!(
                populations(&device) == alone,
                "round {round}: other weights"
            );
        }
    });
}
