//! Snapping a layer's weights to discrete values: the trait a unit implements to be read back,
//! the helpers it uses, and what stands in the way.

use std::fmt;

use burn::tensor::Tensor;

use super::{Expr, FormulaError};
use crate::ArithmeticUnit;

/// How close to discrete a weight must be to be snapped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SnapOptions {
    /// Largest accepted `min(|w|, |1 − |w||)` of any weight.
    pub max_distance: f64,
    /// A gate counts as saturated when all its values on the data are within this of 0 or 1.
    pub gate_tolerance: f64,
}

impl Default for SnapOptions {
    /// `max_distance` 0.1, `gate_tolerance` 0.01.
    fn default() -> Self {
        Self {
            max_distance: 0.1,
            gate_tolerance: 0.01,
        }
    }
}

/// Why a layer has no formula.
#[derive(Clone, Debug, PartialEq)]
pub enum NotDiscrete {
    /// A weight farther than the tolerance from the value it would snap to.
    Weight {
        /// The layer, as [`extract`](super::extract) names it (`layer 0`, `layer 1`, …).
        layer: String,
        /// The parameter (`W`).
        parameter: &'static str,
        /// Row (input) and column (output) of the weight.
        at: (usize, usize),
        /// The weight.
        value: f64,
        /// `min(|w|, |1 − |w||)`.
        distance: f64,
    },
    /// A NALU gate that is neither always open nor always closed on the data.
    Gate {
        /// The layer.
        layer: String,
        /// The output whose gate it is.
        output: usize,
        /// Smallest and largest gate value on the data.
        range: (f64, f64),
    },
}

impl NotDiscrete {
    /// The output (column) of its layer that the obstacle belongs to.
    pub(crate) fn output(&self) -> usize {
        match self {
            NotDiscrete::Weight { at: (_, j), .. } => *j,
            NotDiscrete::Gate { output, .. } => *output,
        }
    }
}

impl fmt::Display for NotDiscrete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotDiscrete::Weight {
                layer,
                parameter,
                at: (i, j),
                value,
                distance,
            } => write!(
                f,
                "{layer} {parameter}[{i}, {j}] = {value:.4} is {distance:.4} from discrete"
            ),
            NotDiscrete::Gate {
                layer,
                output,
                range: (lo, hi),
            } => write!(
                f,
                "{layer} gate of output {output} ranges over [{lo:.4}, {hi:.4}] on the data"
            ),
        }
    }
}

/// One layer, snapped: its outputs as expressions of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSnap {
    /// One expression per output.
    pub outputs: Vec<Expr>,
    /// Per output, the inputs whose snapped weight to it is not zero.
    pub support: Vec<Vec<usize>>,
    /// The largest `min(|w|, |1 − |w||)` of the layer's weights.
    pub sparsity_error: f64,
    /// Weights beyond the tolerance and open gates (with the layer still unnamed).
    pub obstacles: Vec<NotDiscrete>,
}

/// A unit whose weights can be snapped to discrete values and read back as a formula.
///
/// Each unit implements it in its own file, with [`SnappedWeights`] (and [`column_ranges`] for
/// gates that depend on the data); a unit that cannot be read returns
/// [`FormulaError::Unsupported`]. [`extract`](super::extract) reads a stack of such units.
pub trait Discretize: ArithmeticUnit {
    /// The layer's formula, given its inputs as expressions and its input values on the
    /// data (`[rows, d_input]`, used by input-dependent gates).
    fn discretize(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError>;
}

/// A layer of a stack as [`extract`](super::extract) reads it: implemented for every
/// [`Discretize`] unit (a trait object can hold any of them).
pub trait FormulaLayer {
    /// [`Discretize::discretize`].
    fn snap_layer(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError>;

    /// The layer's forward pass on a rank-2 batch, `[rows, d_input] → [rows, d_output]`.
    fn forward_rows(&self, x: Tensor<2>) -> Tensor<2>;
}

impl<U: Discretize> FormulaLayer for U {
    fn snap_layer(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        self.discretize(inputs, x, options)
    }

    fn forward_rows(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_members(x, 1)
    }
}

/// A weight matrix `[d_in, d_out]` on the host, snapped to {−1, 0, 1} (or {0, 1}), with the
/// weights too far from their snap as obstacles: the building block of a unit's
/// [`Discretize`].
#[derive(Clone, Debug)]
pub struct SnappedWeights {
    d_out: usize,
    /// Snapped values, row-major.
    values: Vec<i64>,
    sparsity_error: f64,
    obstacles: Vec<NotDiscrete>,
}

impl SnappedWeights {
    /// Snaps `w` to {−1, 0, 1} (or {0, 1} when `nonnegative`) with `options.max_distance`.
    pub fn new(w: Tensor<2>, nonnegative: bool, options: &SnapOptions) -> Self {
        let [_, d_out] = w.dims();
        let host = w.into_data().convert::<f64>();
        let host = host.as_slice::<f64>().expect("f64 after convert");
        let mut obstacles = Vec::new();
        let mut sparsity_error: f64 = 0.0;
        let values = host
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let distance = v.abs().min((1.0 - v.abs()).abs());
                sparsity_error = sparsity_error.max(distance);
                if distance > options.max_distance || (nonnegative && v < -options.max_distance) {
                    obstacles.push(NotDiscrete::Weight {
                        layer: String::new(),
                        parameter: "W",
                        at: (k / d_out, k % d_out),
                        value: v,
                        distance,
                    });
                }
                if v.abs() < 0.5 { 0 } else { v.signum() as i64 }
            })
            .collect();
        Self {
            d_out,
            values,
            sparsity_error,
            obstacles,
        }
    }

    /// `(input index, weight)` of the non-zero weights of output `j`.
    pub fn column(&self, j: usize) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.values
            .iter()
            .skip(j)
            .step_by(self.d_out)
            .copied()
            .enumerate()
            .filter(|&(_, w)| w != 0)
    }

    /// `Σ_i w_ij·inputs[i]` for each output `j`.
    pub fn sums(&self, inputs: &[Expr]) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| Expr::weighted_sum(self.column(j).map(|(i, w)| (w, inputs[i].clone()))))
            .collect()
    }

    /// `Π_i inputs[i]^w_ij` for each output `j` (of magnitudes `|inputs[i]|` when
    /// `magnitudes`).
    pub fn products(&self, inputs: &[Expr], magnitudes: bool) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| {
                let factors = self.column(j).map(|(i, w)| (inputs[i].clone(), w as i32));
                Expr::product(factors, magnitudes)
            })
            .collect()
    }

    /// The layer whose outputs are `outputs`, with these weights' support, sparsity error and
    /// obstacles.
    pub fn into_layer(self, outputs: Vec<Expr>) -> LayerSnap {
        let support = (0..self.d_out)
            .map(|j| self.column(j).map(|(i, _)| i).collect())
            .collect();
        LayerSnap {
            outputs,
            support,
            sparsity_error: self.sparsity_error,
            obstacles: self.obstacles,
        }
    }
}

/// `(min, max)` of each column of `t`: the range of each output's gate on the data.
pub fn column_ranges(t: Tensor<2>) -> Vec<(f64, f64)> {
    let [_, cols] = t.dims();
    let data = t.into_data().convert::<f64>();
    let values = data.as_slice::<f64>().expect("f64 after convert");
    (0..cols)
        .map(|j| {
            values
                .iter()
                .skip(j)
                .step_by(cols)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        })
        .collect()
}
