//! Criterion benchmarks: forward and forward+backward of `Nac` and `Nalu` at the static-toy size
//! (`100 → 2`, batch 64) and a large size (`1024 → 1024`, batch 4096). `cargo bench -p
//! burn-nalu`; `BURN_DEVICE=ndarray cargo bench -p burn-nalu --features ndarray` for ndarray.
//! The training steps of the experiments (one run, a population) are timed by the lab's
//! `cargo run --release --example timing`.

use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::{Nac, NacConfig, Nalu, NaluConfig};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// `(name, d_input, d_output, batch)` of the two sizes.
const SIZES: [(&str, usize, usize, usize); 2] = [("toy", 100, 2, 64), ("large", 1024, 1024, 4096)];

/// Makes sure the work behind `t` has run, at the cost of reading one value.
fn settle(t: Tensor<2>) {
    t.slice([0..1, 0..1]).into_scalar::<f32>();
}

fn layers(c: &mut Criterion) {
    let device = Device::default();
    let ad = device.clone().autodiff();
    for (size, d_in, d_out, batch) in SIZES {
        let mut group = c.benchmark_group(format!("units/{size}"));
        if size == "large" {
            group.sample_size(10);
        }
        let nac: Nac = NacConfig::new(d_in, d_out).init(&ad);
        let nalu: Nalu = NaluConfig::new(d_in, d_out).init(&ad);
        let x = Tensor::<2>::random([batch, d_in], Distribution::Default, &device);
        let x_ad = Tensor::<2>::random([batch, d_in], Distribution::Default, &ad);
        let (nac_valid, nalu_valid) = (
            burn::module::Module::valid(&nac),
            burn::module::Module::valid(&nalu),
        );
        group.bench_function(BenchmarkId::new("nac", "forward"), |b| {
            b.iter(|| settle(nac_valid.forward(x.clone())))
        });
        group.bench_function(BenchmarkId::new("nalu", "forward"), |b| {
            b.iter(|| settle(nalu_valid.forward(x.clone())))
        });
        group.bench_function(BenchmarkId::new("nac", "forward+backward"), |b| {
            b.iter(|| {
                let grads = nac.forward(x_ad.clone()).sum().backward();
                settle(nac.w_hat.grad(&grads).unwrap());
            })
        });
        group.bench_function(BenchmarkId::new("nalu", "forward+backward"), |b| {
            b.iter(|| {
                let grads = nalu.forward(x_ad.clone()).sum().backward();
                settle(nalu.nac.w_hat.grad(&grads).unwrap());
            })
        });
        group.finish();
    }
}

criterion_group!(benches, layers);
criterion_main!(benches);
