//! The public paths users have: every unit at the crate root and in its own module (the README's
//! first release promises `burn_nalu::nac` and `burn_nalu::nalu`). This file fails to compile if
//! one disappears.

use burn::tensor::{Device, Tensor};

/// Compiles only when both arguments have the same type.
fn same_type<T>(_: &T, _: &T) {}

#[test]
fn every_unit_imports_from_its_module_and_from_the_root() {
    use burn_nalu::nac::{Nac, NacConfig};
    use burn_nalu::nalu::{Nalu, NaluConfig};
    let device = Device::default();
    let nac: Nac = NacConfig::new(3, 1).init(&device);
    let nalu: Nalu = NaluConfig::new(3, 1).init(&device);
    same_type(&nac, &burn_nalu::NacConfig::new(3, 1).init(&device));
    same_type(&nalu, &burn_nalu::NaluConfig::new(3, 1).init(&device));
    same_type(
        &burn_nalu::nac_mul::NacMulConfig::new(3, 1).init(&device),
        &burn_nalu::NacMulConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::nau::NauConfig::new(3, 1).init(&device),
        &burn_nalu::NauConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::nmu::NmuConfig::new(3, 1).init(&device),
        &burn_nalu::NmuConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::inalu::InaluConfig::new(3, 1).init(&device),
        &burn_nalu::InaluConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::npu::NpuConfig::new(3, 1).init(&device),
        &burn_nalu::NpuConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::real_npu::RealNpuConfig::new(3, 1).init(&device),
        &burn_nalu::RealNpuConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::nru::NruConfig::new(3, 1).init(&device),
        &burn_nalu::NruConfig::new(3, 1).init(&device),
    );
    same_type(
        &burn_nalu::nmru::NmruConfig::new(3, 1).init(&device),
        &burn_nalu::NmruConfig::new(3, 1).init(&device),
    );
    let x = Tensor::<2>::ones([2, 3], &device);
    assert_eq!(nac.forward(x.clone()).dims(), [2, 1]);
    assert_eq!(nalu.forward(x).dims(), [2, 1]);
}
