//! Parameters round-trip through Burn's file format; bad files are errors, not panics.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use burn_nalu::{Nac, NacConfig, Nalu, NaluConfig};

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

#[test]
fn nac_round_trip_reproduces_outputs_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    device.seed(6);
    let nac = NacConfig::new(3, 2).init(&device);
    let x = input(3, &device);
    let before = nac.forward(x.clone()).into_data();
    nac.save_file(dir.path().join("nac")).unwrap();
    let loaded: Nac = NacConfig::new(3, 2)
        .init(&device)
        .load_file(dir.path().join("nac"));
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
