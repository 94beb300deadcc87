//! Gradients of every parameter and of the input against central finite differences, in f64,
//! for every unit.

mod common;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use burn_nalu::{
    ArithmeticUnit, InaluConfig, Nac, NacMulConfig, NaluConfig, Nau, NmruConfig, Nmu, NpuConfig,
    Nru, RealNpuConfig, RecurrentCellConfig, SnmuConfig,
};
use common::{f64_device, inputs, to_f64, values};

const BATCH: usize = 5;
const D_IN: usize = 4;
const D_OUT: usize = 3;
const STEP: f64 = 1e-6;
/// Central differences with step h = 1e-6 in f64 err by the truncation h²·|f'''|/6 (about
/// 1e-12 for these smooth functions of inputs of order 1) plus the rounding 2⁻⁵³·|L|/h (about
/// 1e-10 for losses of order 1): about 1e-9 relative to `1 + |∂L/∂p|`; 1e-6 leaves a margin
/// while any wrong or missing term is off by O(1).
const TOLERANCE: f64 = 1e-6;

/// One parameter's values and shape (`[n]` for gates, `[d_in, d_out]` for weights).
#[derive(Clone)]
struct Values {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// A parameter tensor as the unit receives it; on the autodiff device it is a leaf whose
/// gradient the check reads back.
#[derive(Clone)]
enum Leaf {
    Matrix(Tensor<2>),
    Vector(Tensor<1>),
}

impl Leaf {
    fn new(v: &Values, device: &Device, track: bool) -> Self {
        let data = TensorData::new(v.data.clone(), v.shape.clone());
        let leaf = match v.shape.len() {
            1 => Leaf::Vector(Tensor::from_data(data, device)),
            _ => Leaf::Matrix(Tensor::from_data(data, device)),
        };
        if !track {
            return leaf;
        }
        match leaf {
            Leaf::Matrix(t) => Leaf::Matrix(t.require_grad()),
            Leaf::Vector(t) => Leaf::Vector(t.require_grad()),
        }
    }

    fn matrix(&self) -> Param<Tensor<2>> {
        match self {
            Leaf::Matrix(t) => Param::from_tensor(t.clone()),
            Leaf::Vector(_) => panic!("expected a matrix"),
        }
    }

    fn vector(&self) -> Param<Tensor<1>> {
        match self {
            Leaf::Vector(t) => Param::from_tensor(t.clone()),
            Leaf::Matrix(_) => panic!("expected a vector"),
        }
    }

    fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Vec<f64>> {
        match self {
            Leaf::Matrix(t) => t.grad(grads).map(to_f64),
            Leaf::Vector(t) => t.grad(grads).map(to_f64),
        }
    }
}

type Forward = Box<dyn Fn(Tensor<2>) -> Tensor<2>>;

/// A unit under test: its parameters and how to build it from them.
struct Case {
    name: &'static str,
    params: Vec<Values>,
    build: fn(&[Leaf], &Device) -> Forward,
}

fn matrix(seed: u64, scale: f64) -> Values {
    Values {
        shape: vec![D_IN, D_OUT],
        data: values(D_IN * D_OUT, seed, scale),
    }
}

fn vector(n: usize, seed: u64, offset: f64, scale: f64) -> Values {
    Values {
        shape: vec![n],
        data: values(n, seed, scale)
            .into_iter()
            .map(|v| offset + v)
            .collect(),
    }
}

/// A `[D_IN, D_OUT]` matrix of both signs with `|w|` in `[low, low + width]`.
fn away_from_zero(seed: u64, low: f64, width: f64) -> Values {
    let data = values(D_IN * D_OUT, seed, 1.0);
    Values {
        shape: vec![D_IN, D_OUT],
        data: data
            .into_iter()
            .map(|v| v.signum() * (low + width * v.abs()))
            .collect(),
    }
}

fn nac(p: &[Leaf]) -> Nac {
    Nac {
        w_hat: p[0].matrix(),
        m_hat: p[1].matrix(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "nac",
            params: vec![matrix(1, 1.5), matrix(2, 1.5)],
            build: |p, _| {
                let unit = nac(p);
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nac-mul",
            params: vec![matrix(20, 1.5), matrix(21, 1.5)],
            build: |p, device| {
                let mut unit = NacMulConfig::new(D_IN, D_OUT).init(device);
                unit.nac = nac(p);
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nalu (gated)",
            params: vec![matrix(3, 1.5), matrix(4, 1.5), matrix(5, 1.0)],
            build: |p, device| {
                let mut unit = NaluConfig::new(D_IN, D_OUT).init(device);
                unit.nac = nac(p);
                unit.gate = Some(p[2].matrix());
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nalu (ungated)",
            params: vec![matrix(6, 1.5), matrix(7, 1.5)],
            build: |p, device| {
                let mut unit = NaluConfig::new(D_IN, D_OUT)
                    .with_use_gating(false)
                    .init(device);
                unit.nac = nac(p);
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nau",
            params: vec![matrix(8, 1.0)],
            build: |p, _| {
                let unit = Nau {
                    weight: p[0].matrix(),
                };
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nmu",
            params: vec![matrix(9, 0.5)],
            build: |p, _| {
                let unit = Nmu {
                    weight: p[0].matrix(),
                };
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "inalu",
            params: vec![
                matrix(10, 1.5),
                matrix(11, 1.5),
                matrix(12, 1.5),
                matrix(13, 1.5),
                vector(D_OUT, 14, 0.0, 1.0),
            ],
            build: |p, device| {
                let mut unit = InaluConfig::new(D_IN, D_OUT).init(device);
                unit.add = nac(&p[0..2]);
                unit.mul = nac(&p[2..4]);
                unit.gate = p[4].vector();
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nru (selector saturated: the powers)",
            params: vec![away_from_zero(22, 0.3, 0.7)],
            build: |p, _| {
                let unit = Nru {
                    weight: p[0].matrix(),
                };
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "nru (selector tanh²(1000·W) in its slope)",
            params: vec![away_from_zero(23, 0.002, 0.004)],
            build: |p, _| {
                let unit = Nru {
                    weight: p[0].matrix(),
                };
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "snmu (the same noise at every evaluation)",
            params: vec![Values {
                shape: vec![D_IN, D_OUT],
                data: values(D_IN * D_OUT, 25, 0.4)
                    .into_iter()
                    .map(|v| 0.5 + v)
                    .collect(),
            }],
            build: |p, device| {
                let mut unit = SnmuConfig::new(D_IN, D_OUT).init(device);
                unit.weight = p[0].matrix();
                let device = device.clone();
                Box::new(move |x| {
                    // The noise is the device generator's: reseeded, every pass draws the same.
                    device.seed(11);
                    unit.forward(x)
                })
            },
        },
        Case {
            name: "nmru",
            params: vec![Values {
                shape: vec![2 * D_IN, D_OUT],
                data: values(2 * D_IN * D_OUT, 24, 0.4)
                    .into_iter()
                    .map(|v| 0.5 + v)
                    .collect(),
            }],
            build: |p, device| {
                let mut unit = NmruConfig::new(D_IN, D_OUT).init(device);
                unit.weight = p[0].matrix();
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "npu",
            params: vec![matrix(15, 1.0), matrix(16, 0.5), vector(D_IN, 17, 0.5, 0.3)],
            build: |p, device| {
                let mut unit = NpuConfig::new(D_IN, D_OUT).init(device);
                unit.w_re = p[0].matrix();
                unit.w_im = p[1].matrix();
                unit.gate = p[2].vector();
                Box::new(move |x| unit.forward(x))
            },
        },
        Case {
            name: "realnpu",
            params: vec![matrix(18, 1.0), vector(D_IN, 19, 0.5, 0.3)],
            build: |p, device| {
                let mut unit = RealNpuConfig::new(D_IN, D_OUT).init(device);
                unit.w_re = p[0].matrix();
                unit.gate = p[1].vector();
                Box::new(move |x| unit.forward(x))
            },
        },
    ]
}

/// The scalar `L = Σ y ⊙ R` with a fixed `R`, so every output element counts with its own weight.
fn loss(y: Tensor<2>, device: &Device) -> Tensor<1> {
    let [rows, cols] = y.dims();
    let r = Tensor::<2>::from_data(
        TensorData::new(values(rows * cols, 99, 1.0), [rows, cols]),
        device,
    );
    y.mul(r).sum()
}

/// The loss at `params` and `x`, with the parameters tracked as in the gradient pass: the
/// division units compute their training form then (the NRU's `tanh²` selector, the NMRU's
/// `1/(x + ε)`), which is what their gradients are of.
fn eval(case: &Case, params: &[Values], x: &Values, device: &Device) -> f64 {
    let leaves: Vec<Leaf> = params.iter().map(|v| Leaf::new(v, device, true)).collect();
    let Leaf::Matrix(x) = Leaf::new(x, device, false) else {
        unreachable!()
    };
    loss((case.build)(&leaves, device)(x), device).into_scalar::<f64>()
}

/// Checks the autodiff gradient of every parameter element and input element of `case`.
fn check(case: &Case) {
    check_entries(case, [BATCH, D_IN], 1);
}

/// Checks the autodiff gradient of every `stride`-th parameter element and input element of
/// `case` for an input of `[rows, cols]`. Inputs have both signs and stay at least 0.2 away
/// from zero, where `|x|` has no derivative.
fn check_entries(case: &Case, [rows, cols]: [usize; 2], stride: usize) {
    let device = f64_device();
    let ad = device.clone().autodiff();
    let x = Values {
        shape: vec![rows, cols],
        data: inputs(rows, cols, 7),
    };
    let leaves: Vec<Leaf> = case
        .params
        .iter()
        .map(|v| Leaf::new(v, &ad, true))
        .collect();
    let x_leaf = Leaf::new(&x, &ad, true);
    let Leaf::Matrix(x_ad) = x_leaf.clone() else {
        unreachable!()
    };
    let grads = loss((case.build)(&leaves, &ad)(x_ad), &ad).backward();

    // Position `params.len()` stands for the input.
    for which in 0..=case.params.len() {
        let (leaf, what) = match leaves.get(which) {
            Some(leaf) => (leaf, format!("{} param {which}", case.name)),
            None => (&x_leaf, format!("{} input", case.name)),
        };
        let analytic = leaf
            .grad(&grads)
            .unwrap_or_else(|| panic!("{what}: no gradient"));
        for (i, &a) in analytic.iter().enumerate().step_by(stride) {
            let at = |delta: f64| {
                let (mut params, mut x) = (case.params.clone(), x.clone());
                match params.get_mut(which) {
                    Some(p) => p.data[i] += delta,
                    None => x.data[i] += delta,
                }
                eval(case, &params, &x, &ad)
            };
            let numeric = (at(STEP) - at(-STEP)) / (2.0 * STEP);
            let err = (a - numeric).abs() / (1.0 + numeric.abs());
            assert!(
                err < TOLERANCE,
                "{what}[{i}]: autodiff {a}, finite difference {numeric} (error {err:e})"
            );
        }
    }
}

#[test]
fn every_unit_matches_finite_differences() {
    for case in cases() {
        check(&case);
    }
}

/// A recurrent cell around each unit, `[x_t, h_{t−1}] → h_t` with one input feature and the
/// 3-wide hidden state (so the units' `[4, 3]` weights of the cases above), unrolled over 6
/// steps: gradients through the whole sequence, `h_0` included.
#[test]
fn every_unit_as_a_recurrent_cell_matches_finite_differences_through_six_steps() {
    fn cell<U: ArithmeticUnit + 'static>(unit: U, p: &[Leaf], device: &Device) -> Forward {
        let mut cell = RecurrentCellConfig::new(1, D_OUT).init(device, |_, _| unit);
        cell.initial = p[p.len() - 1].vector();
        Box::new(move |x| cell.forward_members(x, 1))
    }
    let h0 = || vector(D_OUT, 30, 0.8, 0.3);
    let cases = [
        Case {
            name: "nau cell",
            params: vec![matrix(31, 0.6), h0()],
            build: |p, d| {
                let unit = Nau {
                    weight: p[0].matrix(),
                };
                cell(unit, p, d)
            },
        },
        Case {
            name: "nac cell",
            params: vec![matrix(32, 1.0), matrix(33, 1.0), h0()],
            build: |p, d| cell(nac(p), p, d),
        },
        Case {
            name: "nalu cell",
            params: vec![matrix(34, 1.0), matrix(35, 1.0), matrix(36, 0.5), h0()],
            build: |p, d| {
                let mut unit = NaluConfig::new(D_IN, D_OUT).init(d);
                unit.nac = nac(p);
                unit.gate = Some(p[2].matrix());
                cell(unit, p, d)
            },
        },
        Case {
            name: "nmu cell",
            params: vec![matrix(37, 0.4), h0()],
            build: |p, d| {
                let unit = Nmu {
                    weight: p[0].matrix(),
                };
                cell(unit, p, d)
            },
        },
        Case {
            name: "npu cell",
            params: vec![
                matrix(40, 0.5),
                matrix(41, 0.2),
                vector(D_IN, 42, 0.5, 0.3),
                h0(),
            ],
            build: |p, d| {
                let mut unit = NpuConfig::new(D_IN, D_OUT).init(d);
                unit.w_re = p[0].matrix();
                unit.w_im = p[1].matrix();
                unit.gate = p[2].vector();
                cell(unit, p, d)
            },
        },
        Case {
            name: "inalu cell",
            params: vec![
                matrix(43, 1.5),
                matrix(44, 1.5),
                matrix(45, 1.5),
                matrix(46, 1.5),
                vector(D_OUT, 47, 0.0, 1.0),
                h0(),
            ],
            build: |p, d| {
                let mut unit = InaluConfig::new(D_IN, D_OUT).init(d);
                unit.add = nac(&p[0..2]);
                unit.mul = nac(&p[2..4]);
                unit.gate = p[4].vector();
                cell(unit, p, d)
            },
        },
        Case {
            name: "realnpu cell",
            params: vec![matrix(38, 0.5), vector(D_IN, 39, 0.5, 0.3), h0()],
            build: |p, d| {
                let mut unit = RealNpuConfig::new(D_IN, D_OUT).init(d);
                unit.w_re = p[0].matrix();
                unit.gate = p[1].vector();
                cell(unit, p, d)
            },
        },
    ];
    for case in &cases {
        check_entries(case, [BATCH, 6], 1);
    }
}

#[test]
fn large_gated_nalu_matches_finite_differences() {
    // Above the fused layer's DIRECT_MAX_WORK (2^18 multiply-adds per product), so on flex its
    // GEMM kernels run; every 97th entry of each parameter and of the input is checked.
    let (batch, d_in, d_out) = (70, 64, 60);
    assert!(batch * d_in * d_out > 1 << 18);
    let weights = |seed, scale| Values {
        shape: vec![d_in, d_out],
        data: values(d_in * d_out, seed, scale),
    };
    let case = Case {
        name: "large nalu (gated)",
        params: vec![weights(3, 1.5), weights(4, 1.5), weights(5, 1.0)],
        build: |p, device| {
            let [d_in, d_out] = p[0].matrix().dims();
            let mut unit = NaluConfig::new(d_in, d_out).init(device);
            unit.nac = nac(p);
            unit.gate = Some(p[2].matrix());
            Box::new(move |x| unit.forward(x))
        },
    };
    check_entries(&case, [batch, d_in], 97);
}

#[test]
fn computation_really_runs_in_f64() {
    // 1 + 1e-12 is representable in f64 and rounds to 1 in f32: a silent f32 fallback would
    // make every finite difference above meaningless.
    let device = f64_device();
    let t = Tensor::<1>::from_data(TensorData::new(vec![1.0 + 1e-12], [1]), &device);
    assert_eq!(to_f64(t)[0], 1.0 + 1e-12);
}
