//! Reading the learned arithmetic back: snap a trained stack to discrete weights and render
//! the function it computes.
//!
//! A unit that has learned its task exactly has weights at discrete values: NAC, NAU, the
//! NALU's shared `W` and the iNALU's two at {−1, 0, 1}, NMU and NMRU at {0, 1}, the power units'
//! exponents at multiples of ½, NALU and iNALU gates saturated at 0 or 1 on the data. [`extract`] snaps each weight to
//! the nearest such value, composes the layers into one [`Expr`] per output, and refuses (with
//! [`NotDiscrete`] obstacles naming each weight and its distance) when any weight is farther
//! than [`SnapOptions::max_distance`] from its snap or a gate is open. A stack of linear units
//! (NAC, NAU) that fails this is read once more as the one map it computes, its product of
//! weights snapped to integers: a weight split between two hidden units that the next layer
//! adds back is the function it computes. The *sparsity error* is Madsen & Johansen's
//! `max min(|W|, |1 − |W||)` over every weight of every layer.
//!
//! Rendering ([`Expr::render`]) names input `i` `x{i}` (zero-based), collapses a run of three or
//! more consecutive inputs with one coefficient to `sum(x[i..j])` (`j` exclusive), and replaces a
//! caller's named group ([`Naming`]) when all its inputs share a coefficient:
//!
//! - sums: `x3 + x17 − x42`, `a − b`, `2·a`;
//! - products: factors joined by `·`, divisors after `/`, repeated factors as powers:
//!   `(x1 + x2)·x5`, `a / b`, `a^2`, `1 / (a·b)`;
//! - the NALU's multiplicative path, `exp(log(|x| + ε)·W)`, sees magnitudes, and its factors are
//!   written as such: `|a|·|b|`.
//!
//! ```
//! use burn::module::Param;
//! use burn::tensor::{Device, Tensor};
//! use burn_nalu::formula::{Naming, SnapOptions, extract};
//! use burn_nalu::{NauConfig, NmuConfig};
//!
//! let device = Device::default();
//! // x0 + x1 and x2 + x3 in the first layer, their product in the second.
//! let mut nau = NauConfig::new(4, 2).init(&device);
//! nau.weight = Param::from_tensor(Tensor::from_floats(
//!     [[0.99, 0.0], [1.0, 0.01], [0.0, 1.0], [0.02, 0.98]],
//!     &device,
//! ));
//! let mut nmu = NmuConfig::new(2, 1).init(&device);
//! nmu.weight = Param::from_tensor(Tensor::from_floats([[1.0], [0.97]], &device));
//!
//! let x = Tensor::<2>::ones([1, 4], &device);
//! let formula = extract(&[&nau, &nmu], x, &SnapOptions::default()).unwrap();
//! let names = Naming::new().with_group("a", &[0, 1]).with_group("b", &[2, 3]);
//! assert_eq!(formula.render(&names), "a·b");
//! assert_eq!(formula.render(&Naming::new()), "(x0 + x1)·(x2 + x3)");
//! assert!((formula.sparsity_error - 0.03).abs() < 1e-6);
//! ```

mod expr;
mod recurrent;
mod render;
mod snap;

use std::fmt;

use burn::tensor::Tensor;

pub use expr::Expr;
pub use recurrent::extract_recurrent;
pub use render::Naming;
pub use snap::{
    Discretize, FormulaLayer, LayerSnap, Levels, NotDiscrete, SnapOptions, SnappedWeights,
    column_ranges, power_layer,
};

/// The formula of a stack could not be extracted.
#[derive(Clone, Debug, PartialEq)]
pub enum FormulaError {
    /// Some weights are far from discrete or some gates open; each is listed, farthest first.
    NotDiscrete {
        /// The largest `min(|w|, |1 − |w||)` over all weights.
        sparsity_error: f64,
        /// What stands in the way.
        obstacles: Vec<NotDiscrete>,
    },
    /// The stack holds a unit whose [`Discretize`] cannot read it (every unit of this crate
    /// can; a unit of the user's may return it).
    Unsupported(&'static str),
}

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormulaError::NotDiscrete {
                sparsity_error,
                obstacles,
            } => {
                write!(
                    f,
                    "no formula: {} obstacle(s), sparsity error {sparsity_error:.4}",
                    obstacles.len()
                )?;
                for o in obstacles.iter().take(3) {
                    write!(f, "; {o}")?;
                }
                if obstacles.len() > 3 {
                    write!(f, "; …")?;
                }
                Ok(())
            }
            FormulaError::Unsupported(unit) => {
                write!(f, "no formula: {unit} layers cannot be read as a formula")
            }
        }
    }
}

impl std::error::Error for FormulaError {}

/// The formula of a trained stack: one expression per output of its last layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Formula {
    /// One expression per output, over the stack's inputs.
    pub outputs: Vec<Expr>,
    /// The largest `min(|w|, |1 − |w||)` over all weights of the stack.
    pub sparsity_error: f64,
}

impl Formula {
    /// The outputs as text, joined by `; ` when there are several.
    pub fn render(&self, naming: &Naming) -> String {
        let parts: Vec<String> = self.outputs.iter().map(|e| e.render(naming)).collect();
        parts.join("; ")
    }

    /// The formula's outputs on each row of `x` (row-major, `d_input` values a row).
    pub fn eval_rows(&self, x: &[f32], d_input: usize) -> Vec<Vec<f64>> {
        x.chunks(d_input)
            .map(|row| {
                let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                self.outputs.iter().map(|e| e.eval(&row)).collect()
            })
            .collect()
    }
}

/// Snaps the `layers` of a stack (applied in order to `x`, `[rows, d_input]`) and composes
/// their formulas, or says which weights and gates stand in the way.
pub fn extract(
    layers: &[&dyn FormulaLayer],
    x: Tensor<2>,
    options: &SnapOptions,
) -> Result<Formula, FormulaError> {
    let [_, d_input] = x.dims();
    let mut exprs: Vec<Expr> = (0..d_input).map(Expr::input).collect();
    let mut snaps = Vec::with_capacity(layers.len());
    // Each layer's input on the data, for the gates it reads.
    let mut inputs = vec![x];
    for (k, layer) in layers.iter().enumerate() {
        let snap = layer.snap_layer(&exprs, &inputs[k], options)?;
        exprs = snap.outputs.clone();
        snaps.push(snap);
        if k + 1 < layers.len() {
            inputs.push(layer.forward_rows(inputs[k].clone()));
        }
    }
    let sparsity_error = snaps.iter().map(|s| s.sparsity_error).fold(0.0, f64::max);
    let obstacles = live_obstacles(snaps);
    if obstacles.is_empty() {
        return Ok(Formula {
            outputs: exprs,
            sparsity_error,
        });
    }
    let outputs = linear_formula(layers, &inputs, d_input, options)
        .or_else(|| scaled_formula(layers, &inputs, options));
    match outputs {
        Some(outputs) => Ok(Formula {
            outputs,
            sparsity_error,
        }),
        None => Err(FormulaError::NotDiscrete {
            sparsity_error,
            obstacles,
        }),
    }
}

/// The linear map of a stack of units linear on the data (each layer's input in `inputs`),
/// `x·W₁·W₂·…`, or `None` if a layer is not.
fn composed_map(
    layers: &[&dyn FormulaLayer],
    inputs: &[Tensor<2>],
    options: &SnapOptions,
) -> Option<Tensor<2>> {
    let mut maps = (layers.iter().zip(inputs)).map(|(l, x)| l.linear_map_on(x, options));
    let first = maps.next()??;
    maps.try_fold(first, |w, next| Some(w.matmul(next?)))
}

/// Linear units whose every output is one sum scaled (`0.17·a`, `0.17·b`), then a scale-free
/// unit ([`Discretize::scale_free`](snap::Discretize::scale_free)): the last unit read on the
/// unscaled sums, each column of the linear map divided by its largest `|w|` and snapped. Its
/// output is the network's up to the constant `Π c_j^{p_j}` (`1` for `a/b` from equal scales),
/// which the run's success threshold, on the network, has judged. `None` when the stack is
/// not of this form or a scaled column is not a sum of whole inputs.
fn scaled_formula(
    layers: &[&dyn FormulaLayer],
    inputs: &[Tensor<2>],
    options: &SnapOptions,
) -> Option<Vec<Expr>> {
    let (last, linear) = layers.split_last()?;
    if linear.is_empty() || !last.scale_free() {
        return None;
    }
    let map = composed_map(linear, inputs, options)?;
    let scale = map.clone().abs().max_dim(0).clamp_min(f32::MIN_POSITIVE);
    let w = SnappedWeights::new(map.div(scale), Levels::SignedUnit, options);
    if !w.is_discrete() {
        return None;
    }
    let [_, d_input] = inputs[0].dims();
    let sums = w.sums(&(0..d_input).map(Expr::input).collect::<Vec<_>>());
    let snap = last
        .snap_layer(&sums, &inputs[linear.len()], options)
        .ok()?;
    snap.obstacles.is_empty().then_some(snap.outputs)
}

/// A stack of units linear on the data (NAC, NAU; a NALU whose gates are shut to its additive
/// path) read as the one map it computes, `x·W₁·W₂·…`, with that
/// product's coefficients snapped to integers: a weight split between two hidden units (`0.44`
/// and `0.56` of one input, added back by the next layer) is the function `1·x`. `None` when a
/// layer is not linear or a coefficient is not within `options.max_distance` of an integer.
fn linear_formula(
    layers: &[&dyn FormulaLayer],
    inputs: &[Tensor<2>],
    d_input: usize,
    options: &SnapOptions,
) -> Option<Vec<Expr>> {
    let map = composed_map(layers, inputs, options)?;
    let w = SnappedWeights::new(map, Levels::Integers, options);
    let inputs: Vec<Expr> = (0..d_input).map(Expr::input).collect();
    w.is_discrete().then(|| w.sums(&inputs))
}

/// The obstacles of the units the final outputs depend on through non-zero snapped weights
/// (a hidden unit nothing reads may stay undecided), named by layer and farthest first.
fn live_obstacles(snaps: Vec<LayerSnap>) -> Vec<NotDiscrete> {
    let widths: Vec<usize> = snaps.iter().map(|s| s.outputs.len()).collect();
    let mut used = vec![true; widths.last().copied().unwrap_or(0)];
    let mut obstacles = Vec::new();
    for (k, snap) in snaps.into_iter().enumerate().rev() {
        let live = snap.obstacles.into_iter().filter(|o| used[o.output()]);
        obstacles.extend(live.map(|o| named(o, k)));
        if k == 0 {
            break;
        }
        let mut read = vec![false; widths[k - 1]];
        for (support, _) in snap.support.iter().zip(&used).filter(|(_, u)| **u) {
            support.iter().for_each(|&i| read[i] = true);
        }
        used = read;
    }
    obstacles.sort_by(|a, b| severity(b).total_cmp(&severity(a)));
    obstacles
}

fn named(o: NotDiscrete, k: usize) -> NotDiscrete {
    let layer = format!("layer {k}");
    match o {
        NotDiscrete::Weight {
            layer: _,
            parameter,
            at,
            value,
            distance,
        } => NotDiscrete::Weight {
            layer,
            parameter,
            at,
            value,
            distance,
        },
        NotDiscrete::Gate {
            layer: _,
            output,
            range,
        } => NotDiscrete::Gate {
            layer,
            output,
            range,
        },
        other => other,
    }
}

/// How far from discrete an obstacle is (an open gate's distance is its range's from 0 or 1).
fn severity(o: &NotDiscrete) -> f64 {
    match o {
        NotDiscrete::Weight { distance, .. } => *distance,
        NotDiscrete::Gate {
            range: (lo, hi), ..
        } => (1.0 - lo).min(*hi),
        NotDiscrete::Recurrence { value, want, .. } => (value - want).abs(),
        NotDiscrete::InitialState { value, .. } => value.abs(),
    }
}
