//! Parameters round-trip through Burn's file format; bad files are errors, not panics.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::{
    ArithmeticUnit, InaluConfig, NacConfig, NacMulConfig, Nalu, NaluConfig, NauConfig, NmruConfig,
    NmuConfig, NpuConfig, NruConfig, Population, RealNpuConfig, SnmuConfig,
};

fn input(d_input: usize, device: &Device) -> Tensor<2> {
    Tensor::random([8, d_input], Distribution::Uniform(-3.0, 3.0), device)
}

#[test]
fn nalu_round_trip_reproduces_outputs_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    device.seed(5);
    let config = NaluConfig::new(6, 4).with_epsilon(1e-6);
    let nalu = config.init(&device);
    let x = input(6, &device);
    let before = nalu.forward(x.clone()).into_data();

    // A user stores the config beside the weights and rebuilds from both.
    config.save(dir.path().join("config.json")).unwrap();
    nalu.save_file(dir.path().join("nalu")).unwrap();
    let config = NaluConfig::load(dir.path().join("config.json")).unwrap();
    let loaded: Nalu = config.init(&device).load_file(dir.path().join("nalu"));

    assert_eq!(loaded.epsilon(), 1e-6);
    loaded.forward(x).into_data().assert_eq(&before, true);
}

/// `unit` saved and loaded into `blank` (the same config, other weights) computes exactly what
/// `unit` computes, and `blank` did not before.
fn assert_round_trip<U: ArithmeticUnit>(unit: U, blank: U, d_input: usize) {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    let x = input(d_input, &device);
    let before = unit.forward_members(x.clone(), 1).into_data();
    let other = blank.forward_members(x.clone(), 1).into_data();
    let name = std::any::type_name::<U>();
    assert_ne!(
        other, before,
        "{name}: the blank unit must differ to prove the load"
    );
    unit.save_file(dir.path().join("unit")).unwrap();
    let loaded = blank.load_file(dir.path().join("unit"));
    loaded
        .forward_members(x, 1)
        .into_data()
        .assert_eq(&before, true);
}

/// Two units of one config from different seeds.
fn two<U>(init: impl Fn(&Device) -> U) -> (U, U) {
    let device = Device::default();
    device.seed(6);
    let unit = init(&device);
    device.seed(7);
    (unit, init(&device))
}

#[test]
fn every_unit_round_trips_exactly() {
    let (a, b) = two(|d| NacConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NacMulConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NaluConfig::new(3, 2).with_use_gating(false).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NauConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NmuConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| InaluConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (mut a, b) = two(|d| NpuConfig::new(3, 2).init(d));
    // W_im starts at 0 and ĝ at ½ in both: give the saved unit its own.
    a.w_im = Param::from_tensor(a.w_re.val().mul_scalar(0.3));
    a.gate = Param::from_tensor(a.gate.val().add_scalar(0.2));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| RealNpuConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NruConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| NmruConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
    let (a, b) = two(|d| SnmuConfig::new(3, 2).init(d));
    assert_round_trip(a, b, 3);
}

/// A population round-trips with every member.
#[test]
fn a_population_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    let stack = |d: &Device| NmuConfig::new(5, 2).init(d);
    let population = Population::init(0..3, &device, stack);
    let x = Tensor::<3>::random([3, 8, 5], Distribution::Uniform(-3.0, 3.0), &device);
    let before = population.forward(x.clone()).into_data();
    population.save_file(dir.path().join("population")).unwrap();
    let blank = Population::init(10..13, &device, stack);
    assert_ne!(blank.forward(x.clone()).into_data(), before);
    let loaded = blank.load_file(dir.path().join("population"));
    assert_eq!(loaded.members(), 3);
    loaded.forward(x).into_data().assert_eq(&before, true);
}

#[test]
fn corrupt_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.bpk");
    std::fs::write(&path, b"this is not a burnpack file").unwrap();
    let result = NaluConfig::new(2, 1)
        .init(&Device::default())
        .try_load_file(&path);
    assert!(result.is_err());
}

#[test]
fn missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = NaluConfig::new(2, 1)
        .init(&Device::default())
        .try_load_file(dir.path().join("absent.bpk"));
    assert!(result.is_err());
}

#[test]
fn weights_of_another_shape_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    let path = dir.path().join("nalu_3x2");
    NaluConfig::new(3, 2)
        .init(&device)
        .save_file(&path)
        .unwrap();
    let err = NaluConfig::new(4, 2)
        .init(&device)
        .try_load_file(&path)
        .expect_err("a [3, 2] file loaded into a [4, 2] layer");
    let msg = err.to_string();
    assert!(msg.contains("nac.w_hat: shape mismatch"), "{msg}");
    assert!(msg.contains("[3, 2]") && msg.contains("[4, 2]"), "{msg}");
}

#[test]
fn ungated_weights_into_gated_layer_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    let path = dir.path().join("ungated");
    NaluConfig::new(3, 2)
        .with_use_gating(false)
        .init(&device)
        .save_file(&path)
        .unwrap();
    let result = NaluConfig::new(3, 2).init(&device).try_load_file(&path);
    assert!(result.is_err(), "the gate is missing from the file");
}
