//! `formula::extract` reads stacks of units back as the arithmetic they compute, or names what
//! stands in the way.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use burn_nalu::formula::{FormulaError, Naming, NotDiscrete, SnapOptions, extract};
use burn_nalu::{NacConfig, NaluConfig, NauConfig, NmuConfig, NpuConfig, RealNpu, RealNpuConfig};

fn matrix(rows: &[&[f32]]) -> Tensor<2> {
    let (r, c) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.iter().flat_map(|row| row.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [r, c]), &Device::default())
}

#[test]
fn nac_and_nau_snap_to_signed_sums() {
    let device = Device::default();
    let mut nau = NauConfig::new(3, 2).init(&device);
    nau.weight = Param::from_tensor(matrix(&[&[0.98, 0.01], &[-1.0, 0.97], &[0.03, -0.99]]));
    let x = Tensor::zeros([1, 3], &device);
    let f = extract(&[&nau], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 − x1; x1 − x2");
    assert!((f.sparsity_error - 0.03).abs() < 1e-6);
    // NAC: W = tanh(Ŵ)·σ(M̂) ≈ ±1 or 0 with saturated hat weights.
    let mut nac = NacConfig::new(3, 1).init(&device);
    nac.w_hat = Param::from_tensor(matrix(&[&[20.0], &[-20.0], &[0.0]]));
    nac.m_hat = Param::from_tensor(matrix(&[&[20.0], &[20.0], &[20.0]]));
    let f = extract(&[&nac], x, &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 − x1");
}

#[test]
fn nau_then_nmu_reads_as_a_product_of_groups() {
    let device = Device::default();
    let mut nau = NauConfig::new(4, 2).init(&device);
    nau.weight = Param::from_tensor(matrix(&[
        &[1.0, 0.0],
        &[1.0, 0.0],
        &[0.0, 1.0],
        &[0.0, 1.0],
    ]));
    let mut nmu = NmuConfig::new(2, 1).init(&device);
    nmu.weight = Param::from_tensor(matrix(&[&[1.0], &[0.999]]));
    let x = matrix(&[&[1.0, 2.0, 3.0, 4.0]]);
    let f = extract(&[&nau, &nmu], x, &SnapOptions::default()).unwrap();
    let ab = Naming::new()
        .with_group("a", &[0, 1])
        .with_group("b", &[2, 3]);
    assert_eq!(f.render(&ab), "a·b");
    assert_eq!(f.render(&Naming::new()), "(x0 + x1)·(x2 + x3)");
    assert_eq!(f.eval_rows(&[1.0, 2.0, 3.0, 4.0], 4), vec![vec![21.0]]);
}

/// A NALU with saturated `W` and a gate saturated by the data picks one path per output.
#[test]
fn nalu_gates_choose_the_path() {
    let device = Device::default();
    let mut nalu = NaluConfig::new(2, 2).init(&device);
    nalu.nac.w_hat = Param::from_tensor(matrix(&[&[20.0, 20.0], &[20.0, -20.0]]));
    nalu.nac.m_hat = Param::from_tensor(matrix(&[&[20.0, 20.0], &[20.0, 20.0]]));
    // Positive inputs: output 0's gate logit is +40·(x0 + x1) (additive), output 1's −40·… .
    nalu.gate = Some(Param::from_tensor(matrix(&[
        &[40.0, -40.0],
        &[40.0, -40.0],
    ])));
    let x = matrix(&[&[1.0, 2.0], &[3.0, 0.5]]);
    let f = extract(&[&nalu], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1; |x0| / |x1|");
    // Inputs near zero leave the gate open: no formula, and the error says which.
    let near_zero = matrix(&[&[0.001, 0.001], &[1.0, 1.0]]);
    let err = extract(&[&nalu], near_zero, &SnapOptions::default()).unwrap_err();
    let FormulaError::NotDiscrete { obstacles, .. } = &err else {
        panic!("{err}")
    };
    let gate_0 = |o: &NotDiscrete| matches!(o, NotDiscrete::Gate { output: 0, .. });
    assert!(obstacles.iter().any(gate_0), "{err}");
    assert!(
        err.to_string()
            .contains("layer 0 gate of output 0 ranges over [0.5"),
        "{err}"
    );
    // Ungated: both paths, added.
    let mut ungated = NaluConfig::new(2, 1).with_use_gating(false).init(&device);
    ungated.nac.w_hat = Param::from_tensor(matrix(&[&[20.0], &[20.0]]));
    ungated.nac.m_hat = Param::from_tensor(matrix(&[&[20.0], &[20.0]]));
    let f = extract(&[&ungated], x, &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1 + |x0|·|x1|");
}

/// A hidden unit that the output ignores (snapped weight 0) may stay undecided.
#[test]
fn unread_hidden_units_do_not_block_the_formula() {
    let device = Device::default();
    let mut nau = NauConfig::new(2, 2).init(&device);
    nau.weight = Param::from_tensor(matrix(&[&[1.0, 0.4], &[1.0, 0.6]]));
    let mut nmu = NmuConfig::new(2, 1).init(&device);
    nmu.weight = Param::from_tensor(matrix(&[&[1.0], &[0.0]]));
    let x = Tensor::zeros([1, 2], &device);
    let f = extract(&[&nau, &nmu], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1");
    assert!((f.sparsity_error - 0.4).abs() < 1e-6, "counts every weight");
    // Once the output reads the undecided unit, its weights block the formula.
    nmu.weight = Param::from_tensor(matrix(&[&[1.0], &[1.0]]));
    let err = extract(&[&nau, &nmu], x, &SnapOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("no formula: 2 obstacle(s)"),
        "{err}"
    );
}

#[test]
fn weights_far_from_discrete_are_refused_by_name() {
    let device = Device::default();
    let mut nau = NauConfig::new(2, 1).init(&device);
    nau.weight = Param::from_tensor(matrix(&[&[0.6], &[0.95]]));
    let err = extract(
        &[&nau],
        Tensor::zeros([1, 2], &device),
        &SnapOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no formula: 1 obstacle(s), sparsity error 0.4000; \
         layer 0 W[0, 0] = 0.6000 is 0.4000 from discrete"
    );
    let loose = SnapOptions {
        max_distance: 0.45,
        ..SnapOptions::default()
    };
    let f = extract(&[&nau], Tensor::zeros([1, 2], &device), &loose).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1");
}

/// The power units read back with exponents snapped to halves: NAU → RealNPU as `a / b` and
/// `a^0.5`; a closed gate drops its input; an open question (a gate halfway, an imaginary
/// weight) is an obstacle named after its parameter.
#[test]
fn power_units_read_back_with_half_exponents() {
    let device = Device::default();
    let mut nau = NauConfig::new(4, 2).init(&device);
    nau.weight = Param::from_tensor(matrix(&[
        &[1.0, 0.0],
        &[1.0, 0.0],
        &[0.0, 1.0],
        &[0.0, 1.0],
    ]));
    let ab = Naming::new()
        .with_group("a", &[0, 1])
        .with_group("b", &[2, 3]);
    let x = matrix(&[&[1.0, 2.0, 3.0, 4.0]]);
    let real = |w: &[&[f32]], gate: [f32; 2]| {
        let mut unit = RealNpuConfig::new(2, 1).init(&device);
        unit.w_re = Param::from_tensor(matrix(w));
        unit.gate = Param::from_data(gate, &device);
        unit
    };
    let read = |unit: &RealNpu| extract(&[&nau, unit], x.clone(), &SnapOptions::default());
    let div = read(&real(&[&[0.97], &[-1.02]], [1.0, 1.0])).unwrap();
    assert_eq!(div.render(&ab), "a / b");
    assert_eq!(
        div.eval_rows(&[1.0, 2.0, 3.0, 4.0], 4),
        vec![vec![3.0 / 7.0]]
    );
    assert!(
        (div.sparsity_error - 0.03).abs() < 1e-6,
        "{}",
        div.sparsity_error
    );
    let root = read(&real(&[&[0.48], &[0.7]], [1.0, 0.0])).unwrap();
    assert_eq!(
        root.render(&ab),
        "a^0.5",
        "b's gate is shut: its power does not matter"
    );
    let err = read(&real(&[&[0.5], &[1.0]], [1.0, 0.6])).unwrap_err();
    assert!(
        err.to_string()
            .contains("layer 1 ĝ[1, 0] = 0.6000 is 0.4000 from discrete"),
        "{err}"
    );
    let mut npu = NpuConfig::new(2, 1).init(&device);
    npu.w_re = Param::from_tensor(matrix(&[&[2.0], &[0.0]]));
    npu.gate = Param::from_data([1.0, 1.0], &device);
    let square = extract(&[&nau, &npu], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(square.render(&ab), "a^2");
    npu.w_im = Param::from_tensor(matrix(&[&[0.0], &[0.3]]));
    let err = extract(&[&nau, &npu], x, &SnapOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("layer 1 W_im[1, 0] = 0.3000 is 0.3000 from discrete"),
        "{err}"
    );
}

/// A power unit on scaled sums (`0.17·a`, `0.18·b`: a NAU that never reached 1) computes
/// `(0.17/0.18)·a/b`, read as `a / b` on the sums with their scales divided out: the constant
/// is the network's error, which the success threshold judges. A sum whose inputs have unequal
/// weights is not a scaled sum, and an NMU (not scale-free) is not read this way.
#[test]
fn power_units_on_scaled_sums_read_as_the_unscaled_formula() {
    let device = Device::default();
    let mut nau = NauConfig::new(4, 2).init(&device);
    let scaled = |a1: f32| matrix(&[&[0.17, 0.0], &[a1, 0.0], &[0.0, 0.18], &[0.0, 0.18]]);
    nau.weight = Param::from_tensor(scaled(0.17));
    let ab = Naming::new()
        .with_group("a", &[0, 1])
        .with_group("b", &[2, 3]);
    let x = matrix(&[&[1.0, 2.0, 3.0, 4.0]]);
    let mut real = RealNpuConfig::new(2, 1).init(&device);
    real.w_re = Param::from_tensor(matrix(&[&[1.0], &[-1.0]]));
    real.gate = Param::from_data([1.0, 1.0], &device);
    let div = extract(&[&nau, &real], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(div.render(&ab), "a / b");
    // The sparsity error is still the weights' own: 0.17 is 0.17 from 0.
    assert!(
        (div.sparsity_error - 0.18).abs() < 1e-6,
        "{}",
        div.sparsity_error
    );
    nau.weight = Param::from_tensor(scaled(0.09));
    let err = extract(&[&nau, &real], x.clone(), &SnapOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("layer 0 W[0, 0] = 0.1700"),
        "{err}"
    );
    nau.weight = Param::from_tensor(scaled(0.17));
    let mut nmu = NmuConfig::new(2, 1).init(&device);
    nmu.weight = Param::from_tensor(matrix(&[&[1.0], &[1.0]]));
    assert!(extract(&[&nau, &nmu], x, &SnapOptions::default()).is_err());
}

/// A stack of linear units reads back as the one map it computes: a weight split between two
/// hidden units (0.44 and 0.56 of `x0`) is `x0` when the output adds them; inputs shared by two
/// sums count twice. A stack that is not linear throughout is read layer by layer.
#[test]
fn linear_stacks_read_back_as_their_product() {
    let device = Device::default();
    let mut hidden = NauConfig::new(3, 2).init(&device);
    hidden.weight = Param::from_tensor(matrix(&[&[0.44, 0.56], &[1.0, 0.0], &[0.0, 0.0]]));
    let mut output = NauConfig::new(2, 1).init(&device);
    output.weight = Param::from_tensor(matrix(&[&[1.0], &[1.0]]));
    let x = Tensor::zeros([1, 3], &device);
    let f = extract(&[&hidden, &output], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1");
    assert!(
        (f.sparsity_error - 0.44).abs() < 1e-6,
        "per weight: {}",
        f.sparsity_error
    );
    // x0 split, x1 in both hidden units: x0 + 2·x1.
    hidden.weight = Param::from_tensor(matrix(&[&[0.4, 0.6], &[1.0, 1.0], &[0.0, 0.0]]));
    let f = extract(&[&hidden, &output], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + 2·x1");
    // Not an integer map (0.7·x0): no formula, and the error names the layers' weights.
    hidden.weight = Param::from_tensor(matrix(&[&[0.35, 0.35], &[1.0, 0.0], &[0.0, 0.0]]));
    output.weight = Param::from_tensor(matrix(&[&[1.0], &[1.0]]));
    let err = extract(&[&hidden, &output], x, &SnapOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("layer 0 W[0, 0] = 0.3500"),
        "{err}"
    );
}

/// A NALU → NALU stack whose gates are shut to the additive path computes `x·W₁·W₂`: weights
/// that cancel between its hidden units (0.4 of `x2` in both, subtracted by the output) read
/// back as the one map, `x0 + x1`, as a NAC stack's do. With a gate left open, they do not.
#[test]
fn nalu_stacks_with_additive_gates_compose_their_maps() {
    let device = Device::default();
    // tanh(Ŵ)·σ(M̂) with σ(20) = 1: W = tanh(Ŵ).
    let nalu = |w: &[&[f32]], gate: &[&[f32]]| {
        let (r, c) = (w.len(), w[0].len());
        let mut layer = NaluConfig::new(r, c).init(&device);
        let atanh = |v: f32| if v.abs() >= 1.0 { 20.0 * v } else { v.atanh() };
        let w_hat: Vec<Vec<f32>> = w
            .iter()
            .map(|row| row.iter().map(|&v| atanh(v)).collect())
            .collect();
        let w_hat: Vec<&[f32]> = w_hat.iter().map(Vec::as_slice).collect();
        layer.nac.w_hat = Param::from_tensor(matrix(&w_hat));
        layer.nac.m_hat = Param::from_tensor(matrix(&vec![vec![20.0; c].as_slice(); r]));
        layer.gate = Some(Param::from_tensor(matrix(gate)));
        layer
    };
    // h0 = x0 + 0.4·x2 and h1 = x1 − 0.4·x2 (neither discrete), y = h0 + h1 = x0 + x1; every
    // gate logit is 40·(x0 + x1) > 0 on these rows: additive.
    let hidden = nalu(
        &[&[1.0, 0.0], &[0.0, 1.0], &[0.4, -0.4]],
        &[&[40.0, 40.0], &[40.0, 40.0], &[0.0, 0.0]],
    );
    let output = nalu(&[&[1.0], &[1.0]], &[&[40.0], &[40.0]]);
    let x = matrix(&[&[1.0, 2.0, 0.5], &[3.0, 0.5, 2.0]]);
    let f = extract(&[&hidden, &output], x.clone(), &SnapOptions::default()).unwrap();
    assert_eq!(f.render(&Naming::new()), "x0 + x1");
    // The output's gate shut to the multiplicative path on these rows: not one linear map.
    let mul_output = nalu(&[&[1.0], &[1.0]], &[&[-40.0], &[-40.0]]);
    assert!(extract(&[&hidden, &mul_output], x, &SnapOptions::default()).is_err());
}
