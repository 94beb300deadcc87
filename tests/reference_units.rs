//! Every unit against its authors' own code: `tests/reference/vectors/*.json` hold what their
//! layer classes compute (outputs, the gradient of every weight, the regulariser's value and
//! gradients) on fixed weights and inputs, written in f64 by `tests/reference/units.py` from
//! the repository and commit each file names. The crate's unit, given the same weights, must
//! compute the same in f64.

mod common;

use std::f64::consts::E;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use burn_nalu::nalu::GOLDEN_RATIO;
use burn_nalu::{
    ArithmeticUnit, DmuConfig, HillConfig, HillPrimitive, InaluConfig, Nac, NacMulConfig,
    NaluConfig, Nau, NmruConfig, Nmu, NpuConfig, Nru, RealNpuConfig, SnmuConfig,
};
use common::{f64_device, to_f64};
use serde_json::Value;

/// Both sides compute in f64 (unit roundoff u = 1.1e-16), in different orders, except that
/// Burn keeps the operand of a scalar operation (`div_scalar`, `mul_scalar`) as an f32 in the
/// backward pass, on an f64 device too: a gradient through one errs by up to 2⁻²⁴ ≈ 6e-8 of
/// its value (the iNALU's regulariser divides by 20), and [`RELATIVE`] allows four of them. A
/// product through `exp` errs relative to itself too: `exp(s)` with `s` a sum of at most 4
/// terms `W·log(|x| + ε)` below 70 in size, each ~10 operations deep, is off by at most
/// ~40 · 70 · u ≈ 3e-13 of its value. A sum errs relative to its terms: a gradient sums 6 rows
/// of terms (each ~30 operations deep) that these inputs keep within 100 times the tensor's
/// largest element, so at most ~6 · 30 · 100 · u ≈ 2e-12 of it; hence [`OF_LARGEST`] of the
/// largest element. A different formula (another ε, a mean for a sum, a transposed weight, a
/// clamp) is off by 1e-4 of its value or more.
const RELATIVE: f64 = 2.5e-7;
/// See [`RELATIVE`].
const OF_LARGEST: f64 = 1e-10;

/// One reference vector file.
struct Vector {
    unit: String,
    source: String,
    params: Vec<(String, Vec<usize>, Vec<f64>)>,
    x: (Vec<usize>, Vec<f64>),
    y: Vec<f64>,
    cotangent: (Vec<usize>, Vec<f64>),
    grads: Vec<Vec<f64>>,
    regularizer: Option<(f64, Vec<Vec<f64>>)>,
}

/// A nested JSON array as its shape and row-major values.
fn flat(v: &Value) -> (Vec<usize>, Vec<f64>) {
    match v {
        Value::Array(items) if items.first().is_some_and(Value::is_array) => {
            let rows: Vec<_> = items.iter().map(flat).collect();
            let shape = [vec![rows.len()], rows[0].0.clone()].concat();
            (shape, rows.into_iter().flat_map(|(_, d)| d).collect())
        }
        Value::Array(items) => (
            vec![items.len()],
            items
                .iter()
                .map(|x| x.as_f64().expect("a number"))
                .collect(),
        ),
        other => panic!("not an array: {other}"),
    }
}

fn read(path: &Path) -> Vector {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names: Vec<String> = (v["params"].as_object().expect("params").keys().cloned()).collect();
    let by_name =
        |field: &str| -> Vec<Vec<f64>> { (names.iter()).map(|n| flat(&v[field][n]).1).collect() };
    let source = &v["source"];
    Vector {
        unit: v["unit"].as_str().expect("unit").to_string(),
        source: format!(
            "{} {} at {}",
            source["repository"].as_str().unwrap_or("?"),
            source["layer"].as_str().unwrap_or("?"),
            source["commit"].as_str().unwrap_or("?")
        ),
        params: (names.iter())
            .map(|n| {
                let (shape, data) = flat(&v["params"][n]);
                (n.clone(), shape, data)
            })
            .collect(),
        x: flat(&v["x"]),
        y: flat(&v["y"]).1,
        cotangent: flat(&v["cotangent"]),
        grads: by_name("grads"),
        regularizer: v["regularizer"]
            .as_f64()
            .map(|r| (r, by_name("regularizer_grads"))),
    }
}

/// The unit's forward pass and regulariser, built from the vector's parameters.
type Built = (
    Box<dyn Fn(Tensor<2>) -> Tensor<2>>,
    Option<Box<dyn Fn() -> Tensor<1>>>,
);

/// A parameter as a tracked leaf of its own rank (a gate is a vector).
enum Leaf {
    Matrix(Tensor<2>),
    Vector(Tensor<1>),
}

impl Leaf {
    fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Vec<f64>> {
        match self {
            Leaf::Matrix(t) => t.grad(grads).map(to_f64),
            Leaf::Vector(t) => t.grad(grads).map(to_f64),
        }
    }
}

/// A vector's parameters by name, as the crate's units take them.
struct Params<'a> {
    matrix: &'a dyn Fn(&str) -> Param<Tensor<2>>,
    vector: &'a dyn Fn(&str) -> Param<Tensor<1>>,
}

/// `ε` of the NPUs in the authors' code: f32's machine epsilon (Heim et al.'s `eps(T)`, which
/// nalm-benchmark fixes at f32's). The crate's default is 1e-7 (see `NpuConfig::epsilon`).
const NPU_EPSILON: f64 = f32::EPSILON as f64;

/// A unit compared without its regulariser.
fn plain<U: ArithmeticUnit + 'static>(u: U) -> Built {
    (Box::new(move |x| u.forward_members(x, 1)), None)
}

/// A unit compared with its regulariser.
fn regularized<U: ArithmeticUnit + Clone + 'static>(u: U) -> Built {
    let r = u.clone();
    let regularizer = move || r.regularizer_members(1).expect("a regularised unit");
    (
        Box::new(move |x| u.forward_members(x, 1)),
        Some(Box::new(regularizer)),
    )
}

/// The crate's unit named `unit`, from its parameters.
fn build(unit: &str, p: &Params, device: &Device) -> Built {
    let m = p.matrix;
    let nac = |prefix: &str| Nac {
        w_hat: m(&format!("{prefix}w_hat")),
        m_hat: m(&format!("{prefix}m_hat")),
    };
    let [d_input, d_output] = match unit {
        "nau" | "nmu" | "nru" | "nmru" | "snmu" => m("weight").val().dims(),
        "npu" | "realnpu" | "realnpu_mistry" => m("w_re").val().dims(),
        "inalu" => m("add.w_hat").val().dims(),
        "dmu" | "dmu_discrete" => m("o_mag.weight").val().dims(),
        _ => m("w_hat").val().dims(),
    };
    match unit {
        "nac" => plain(nac("")),
        "nac_mul" => {
            let mut u = NacMulConfig::new(d_input, d_output).init(device);
            u.nac = nac("");
            plain(u)
        }
        "nalu" | "gnalu" => {
            let base = if unit == "gnalu" { GOLDEN_RATIO } else { E };
            let config = NaluConfig::new(d_input, d_output).with_base(base);
            let mut u = config.init(device);
            (u.nac, u.gate) = (nac(""), Some(m("gate")));
            plain(u)
        }
        "nau" => regularized(Nau {
            weight: m("weight"),
        }),
        "nmu" => regularized(Nmu {
            weight: m("weight"),
        }),
        "inalu" => {
            // Their floor `ε` is an f32 tensor (`torch.full(..., 1e-7, dtype=float32)`) in an
            // f64 run too: 1e-7 rounded to f32, as the crate's own f32 runs have it.
            let epsilon = 1e-7f32 as f64;
            let config = InaluConfig::new(d_input, d_output).with_epsilon(epsilon);
            let mut u = config.init(device);
            (u.add, u.mul, u.gate) = (nac("add."), nac("mul."), (p.vector)("gate"));
            regularized(u)
        }
        // The crate's NPU regulariser is its own (it pulls gates open: `Npu::regularizer`),
        // neither Heim et al.'s L1 nor nalm-benchmark's; only the unit is compared.
        "npu" => {
            let config = NpuConfig::new(d_input, d_output).with_epsilon(NPU_EPSILON);
            let mut u = config.init(device);
            (u.w_re, u.w_im, u.gate) = (m("w_re"), m("w_im"), (p.vector)("gate"));
            plain(u)
        }
        "realnpu" | "realnpu_mistry" => {
            let config = match unit {
                "realnpu" => RealNpuConfig::new(d_input, d_output),
                _ => RealNpuConfig::mistry(d_input, d_output),
            };
            let mut u = config.with_epsilon(NPU_EPSILON).init(device);
            (u.w_re, u.gate) = (m("w_re"), (p.vector)("gate"));
            match unit {
                // `RealNpuRegularizer::OpenGates`, the crate's own, as the NPU's.
                "realnpu" => plain(u),
                _ => regularized(u),
            }
        }
        // Both in training (their weights track gradients): the NRU's selector is
        // tanh²(1000·W), the NMRU's reciprocal 1/(x + ε).
        "nru" => regularized(Nru {
            weight: m("weight"),
        }),
        "nmru" => {
            let mut u = NmruConfig::new(d_input / 2, d_output).init(device);
            u.weight = m("weight");
            regularized(u)
        }
        // The reference's noise is the one-point range [3, 3], which the crate refuses: a
        // range 1e-9 wide moves the output by at most ~1e-9 of its value per input.
        "snmu" => {
            let config = SnmuConfig::new(d_input, d_output)
                .with_noise_low(3.0)
                .with_noise_high(3.0 + 1e-9);
            let mut u = config.init(device);
            u.weight = m("weight");
            regularized(u)
        }
        // DuJardin's exponential primitive is a complex power with no guard at 0, read on
        // inputs at least 0.1 from it: an `ε` of f64's smallest normal leaves every
        // `log(|x| + ε)` of them `log|x|` to the bit.
        "hill_additive" | "hill_exponential" => {
            let primitive = match unit {
                "hill_additive" => HillPrimitive::Additive,
                _ => HillPrimitive::Exponential,
            };
            let config = HillConfig::new(d_input, d_output)
                .with_primitive(primitive)
                .with_epsilon(f64::MIN_POSITIVE);
            let mut u = config.init(device);
            (u.w_hat, u.m_hat) = (m("w_hat"), m("m_hat"));
            plain(u)
        }
        "dmu" | "dmu_discrete" => {
            let v = p.vector;
            let depth = m("gate.weight").val().dims()[1] / 2;
            let mut u = DmuConfig::new(d_input).with_depth(depth).init(device);
            for (name, head) in [
                ("o_mag", &mut u.o_mag),
                ("o_sign", &mut u.o_sign),
                ("gate", &mut u.gate),
            ] {
                head.weight = m(&format!("{name}.weight"));
                head.bias = Some(v(&format!("{name}.bias")));
            }
            let selector = u.selector.as_mut().expect("a selector at depth 2");
            (selector.weight, selector.bias) = (m("selector.weight"), Some(v("selector.bias")));
            let norm = u.input_norm.as_mut().expect("a LayerNorm");
            (norm.gamma, norm.beta) = (v("input_norm.gamma"), Some(v("input_norm.beta")));
            let u = if unit == "dmu" { u } else { u.discrete() };
            (Box::new(move |x| u.forward(x)), None)
        }
        other => panic!("no unit of the crate for the reference vector {other}"),
    }
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let largest = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = RELATIVE * w.abs() + OF_LARGEST * largest;
        assert!(
            (g - w).abs() <= tolerance,
            "{what}[{i}]: the crate {g}, the authors' code {w} (tolerance {tolerance:e})"
        );
    }
}

fn check(v: &Vector) {
    let device = f64_device().autodiff();
    let tensor = |(shape, data): &(Vec<usize>, Vec<f64>)| -> Tensor<2> {
        Tensor::from_data(TensorData::new(data.clone(), shape.clone()), &device)
    };
    let leaves: Vec<Leaf> = (v.params.iter())
        .map(|(_, shape, data)| {
            let data = TensorData::new(data.clone(), shape.clone());
            match shape.len() {
                1 => Leaf::Vector(Tensor::from_data(data, &device).require_grad()),
                _ => Leaf::Matrix(Tensor::from_data(data, &device).require_grad()),
            }
        })
        .collect();
    let what = |part: &str| format!("{} ({}): {part}", v.unit, v.source);
    let leaf = |name: &str| -> &Leaf {
        let k = (v.params.iter().position(|(n, _, _)| n == name))
            .unwrap_or_else(|| panic!("{}: no parameter {name}", v.unit));
        &leaves[k]
    };
    let params = Params {
        matrix: &|name| match leaf(name) {
            Leaf::Matrix(t) => Param::from_tensor(t.clone()),
            Leaf::Vector(_) => panic!("{}: {name} is a vector", v.unit),
        },
        vector: &|name| match leaf(name) {
            Leaf::Vector(t) => Param::from_tensor(t.clone()),
            Leaf::Matrix(_) => panic!("{}: {name} is a matrix", v.unit),
        },
    };
    let (forward, regularizer) = build(&v.unit, &params, &device);
    let y = forward(tensor(&v.x));
    assert_close(&to_f64(y.clone()), &v.y, &what("output"));
    let grads = y.mul(tensor(&v.cotangent)).sum().backward();
    for ((name, _, _), (leaf, want)) in v.params.iter().zip(leaves.iter().zip(&v.grads)) {
        // No path to the output (the DMU's hard choices) is a gradient of 0.
        let got = leaf.grad(&grads).unwrap_or(vec![0.0; want.len()]);
        assert_close(&got, want, &what(&format!("gradient of {name}")));
    }
    match (regularizer, &v.regularizer) {
        (Some(r), Some((value, want))) => {
            let r = r();
            assert_close(&to_f64(r.clone()), &[*value], &what("regulariser"));
            let grads = r.sum().backward();
            for ((name, _, _), (leaf, want)) in v.params.iter().zip(leaves.iter().zip(want)) {
                let got = leaf.grad(&grads).unwrap_or(vec![0.0; want.len()]);
                assert_close(
                    &got,
                    want,
                    &what(&format!("regulariser's gradient of {name}")),
                );
            }
        }
        (None, None) => {}
        (ours, _) => panic!(
            "{}: the crate's unit has {} regulariser, the reference {}",
            what("regulariser"),
            if ours.is_some() { "a" } else { "no" },
            if v.regularizer.is_some() {
                "one"
            } else {
                "none"
            }
        ),
    }
}

#[test]
fn every_unit_computes_what_its_authors_code_computes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/vectors");
    let mut files: Vec<_> = (std::fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let units: Vec<String> = files.iter().map(|f| read(f).unit).collect();
    let expected = [
        "nac",
        "nac_mul",
        "nalu",
        "gnalu",
        "nau",
        "nmu",
        "inalu",
        "npu",
        "realnpu",
        "nru",
        "nmru",
        "snmu",
        "dmu",
        "dmu_discrete",
        "hill_additive",
        "hill_exponential",
    ];
    for unit in expected {
        assert!(
            units.iter().any(|u| u == unit),
            "no reference vector for {unit}"
        );
    }
    for file in &files {
        check(&read(file));
    }
}
