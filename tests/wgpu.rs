//! Burn's wgpu backend (a GPU, or Mesa's lavapipe on the CPU where there is none) computes what
//! flex computes: every unit's output and every gradient for the same weights and inputs, a
//! population's forward pass, and a short population training run. f32 only: WGSL has no f64.
//!
//! `cargo test --features wgpu --test wgpu` (CI installs lavapipe, `mesa-vulkan-drivers`).

mod common;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use burn_nalu::{
    ArithmeticUnit, InaluConfig, NacConfig, NacMulConfig, NaluConfig, NauConfig, NmruConfig,
    NmuConfig, NpuConfig, NruConfig, Population, RealNpuConfig, RecurrentCellConfig, SnmuConfig,
};
use common::{inputs, to_f64, values};

const BATCH: usize = 7;
const D_IN: usize = 5;
const D_OUT: usize = 3;

fn gpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

fn cpu() -> Device {
    Device::flex()
}

/// `|gpu − cpu| ≤ 1e-4·max(1, |cpu|)` per value. Each output and gradient here is at most about
/// ten f32 operations deep (sums of a handful of terms, `exp`, `log`, `tanh`, `σ`, `cos`), each
/// within a few ulp on either backend (Vulkan bounds `exp` and `log` by 3 + 2·|x| ulp; an
/// `exp` of an argument near 10 carries its argument's error tenfold): some 100 ulp, 1.2e-5
/// relative, in all. A wrong or missing term is off by O(1).
fn assert_close(gpu: &[f64], cpu: &[f64], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}");
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let tol = 1e-4 * c.abs().max(1.0);
        assert!((g - c).abs() <= tol, "{what}[{i}]: wgpu {g}, flex {c}");
    }
}

/// Every float parameter's gradient, flattened, in visiting order.
fn gradients<M: Module>(module: &M, grads: &burn::tensor::Gradients) -> Vec<Vec<f64>> {
    struct Collect<'a>(&'a burn::tensor::Gradients, Vec<Vec<f64>>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = param
                .val()
                .grad(self.0)
                .expect("every parameter has a gradient");
            self.1.push(to_f64(grad));
        }
    }
    let mut collect = Collect(grads, Vec::new());
    module.visit(&mut collect);
    collect.1
}

/// `module` with every parameter a fresh leaf on `device` that tracks its gradient.
fn leaves<M: Module>(module: M, device: &Device) -> M {
    struct Leaves<'a>(&'a Device);
    impl ModuleMapper for Leaves<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let data = param.val().into_data();
            Param::from_tensor(Tensor::from_data(data, self.0).require_grad())
        }
    }
    module.map(&mut Leaves(device))
}

/// The output of `unit` on `x`, and the gradients of `Σ y ⊙ R` (a fixed `R`) for every
/// parameter and the input, on `device`.
fn run<U: ArithmeticUnit>(unit: &U, x: &[f64], device: &Device) -> Vec<Vec<f64>> {
    let data = |v: &[f64], shape: [usize; 2]| TensorData::new(v.to_vec(), shape).convert::<f32>();
    let plain = unit.clone().to_device(device);
    let x_plain = Tensor::<2>::from_data(data(x, [BATCH, D_IN]), device);
    let y = plain.forward_members(x_plain, 1);
    let mut out = vec![to_f64(y)];
    let ad = device.clone().autodiff();
    let tracked = leaves(unit.clone(), &ad);
    let x_ad = Tensor::<2>::from_data(data(x, [BATCH, D_IN]), &ad).require_grad();
    let r = Tensor::<2>::from_data(data(&values(BATCH * D_OUT, 99, 1.0), [BATCH, D_OUT]), &ad);
    let grads = tracked
        .forward_members(x_ad.clone(), 1)
        .mul(r)
        .sum()
        .backward();
    out.extend(gradients(&tracked, &grads));
    out.push(to_f64(x_ad.grad(&grads).expect("the input's gradient")));
    out
}

/// `unit`, built on the CPU from seed 3, against its copy moved to the GPU.
fn check<U: ArithmeticUnit>(name: &str, build: impl Fn(&Device) -> U) {
    let device = cpu();
    device.seed(3);
    let unit = build(&device);
    let x = inputs(BATCH, D_IN, 7);
    let (on_gpu, on_cpu) = (run(&unit, &x, &gpu()), run(&unit, &x, &cpu()));
    for (k, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
        assert_close(g, c, &format!("{name} value {k}"));
    }
}

#[test]
fn every_unit_computes_on_wgpu_what_it_computes_on_flex() {
    check("nac", |d| NacConfig::new(D_IN, D_OUT).init(d));
    check("nac-mul", |d| NacMulConfig::new(D_IN, D_OUT).init(d));
    check("nalu", |d| NaluConfig::new(D_IN, D_OUT).init(d));
    check("nalu, ungated", |d| {
        NaluConfig::new(D_IN, D_OUT).with_use_gating(false).init(d)
    });
    check("nau", |d| NauConfig::new(D_IN, D_OUT).init(d));
    check("nmu", |d| NmuConfig::new(D_IN, D_OUT).init(d));
    check("inalu", |d| InaluConfig::new(D_IN, D_OUT).init(d));
    check("npu", |d| NpuConfig::new(D_IN, D_OUT).init(d));
    check("realnpu", |d| RealNpuConfig::new(D_IN, D_OUT).init(d));
    check("nru", |d| NruConfig::new(D_IN, D_OUT).init(d));
    check("nmru", |d| NmruConfig::new(D_IN, D_OUT).init(d));
    // One step of a cell: the concatenation with h_0 and h_0's own gradient.
    check("nalu cell", |d| {
        RecurrentCellConfig::new(D_IN, D_OUT).init(d, |i, o| NaluConfig::new(i, o).init(d))
    });
}

/// The sNMU draws its training noise from each device's own generator; its evaluation form (the
/// NMU) is compared.
#[test]
fn the_snmu_evaluates_on_wgpu_as_on_flex() {
    let device = cpu();
    device.seed(3);
    let unit = SnmuConfig::new(D_IN, D_OUT).init(&device);
    let x = inputs(BATCH, D_IN, 7);
    let forward = |device: &Device| {
        let x = TensorData::new(x.clone(), [BATCH, D_IN]).convert::<f32>();
        let y = unit
            .clone()
            .to_device(device)
            .forward(Tensor::<2>::from_data(x, device));
        to_f64(y)
    };
    assert_close(&forward(&gpu()), &forward(&cpu()), "snmu");
}

/// A population of 3 NMUs: one forward pass over `[3, batch, 6]`, member by member.
#[test]
fn a_population_computes_on_wgpu_what_it_computes_on_flex() {
    let device = cpu();
    let population = Population::init(0..3, &device, |d| NmuConfig::new(6, 2).init(d));
    let x = values(3 * BATCH * 6, 5, 2.0);
    let forward = |device: &Device| {
        let x = TensorData::new(x.clone(), [3, BATCH, 6]).convert::<f32>();
        let y = (population.clone().to_device(device)).forward(Tensor::<3>::from_data(x, device));
        to_f64(y)
    };
    assert_close(&forward(&gpu()), &forward(&cpu()), "population");
}
