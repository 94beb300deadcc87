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
    /// A recurrent cell that does not keep a running sum of what the layers above read of its
    /// state, `v`: an input's coefficient `steps` steps back, `(A·R^steps·v)[at]`, differs from
    /// its coefficient at the last step, `(A·v)[at]`.
    Recurrence {
        /// Steps back from the last.
        steps: usize,
        /// Input (row) and what is read (column).
        at: (usize, usize),
        /// `(A·R^steps·v)[at]`.
        value: f64,
        /// `(A·v)[at]`.
        want: f64,
    },
    /// A recurrent cell whose initial state shows in what the layers above read, `steps` steps
    /// in: `(h_0·R^steps·v)[at]` is not 0.
    InitialState {
        /// Steps from the start.
        steps: usize,
        /// The column of `h_0·R^steps·v`.
        at: usize,
        /// `(h_0·R^steps·v)[at]`.
        value: f64,
    },
}

impl NotDiscrete {
    /// The output (column) of its layer that the obstacle belongs to.
    pub(crate) fn output(&self) -> usize {
        match self {
            NotDiscrete::Weight { at: (_, j), .. } => *j,
            NotDiscrete::Gate { output, .. } => *output,
            NotDiscrete::Recurrence { at: (_, j), .. } => *j,
            NotDiscrete::InitialState { at, .. } => *at,
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
            NotDiscrete::Recurrence {
                steps,
                at: (i, j),
                value,
                want,
            } => write!(
                f,
                "recurrence: input {i} counts {value:.4} in read {j} {steps} step(s) back, \
                 not {want:.4}"
            ),
            NotDiscrete::InitialState { steps, at, value } => write!(
                f,
                "initial state counts {value:.4} in read {at} after {steps} step(s), not 0"
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

    /// The matrix `W` of a unit that computes `x·W` (NAC, NAU), so that a stack of such units
    /// reads back as the one linear map it computes; `None` for other units.
    fn linear_map(&self) -> Option<Tensor<2>> {
        None
    }

    /// The matrix `W` of a unit that computes `x·W` on the data `x` (`[rows, d_input]`): a
    /// linear unit's [`linear_map`](Self::linear_map), and a gated unit's additive path where
    /// its gates are shut to it on every row (the NALU), so that cancelling weights of such
    /// stacks read back too.
    fn linear_map_on(&self, _x: &Tensor<2>, _options: &SnapOptions) -> Option<Tensor<2>> {
        self.linear_map()
    }

    /// Whether scaling an input by `c > 0` scales each output by a constant (`c^p` for a power
    /// `p`: the power units), so that a unit reading scaled sums (`0.17·a`, `0.17·b`) can be
    /// read on the sums themselves, the constant left to the success threshold to judge.
    fn scale_free(&self) -> bool {
        false
    }

    /// The unit reading its inputs each shifted by `offset` (`x_i + offset_i`), as the unit
    /// that reads `x` up to a constant factor, where its arithmetic cancels the shift (`None`,
    /// the default, elsewhere). The power units' relevance gate can: `ĝ·|x + e| + 1 − ĝ` is
    /// `ĝ·x` for positive `x + e` where `ĝ·e + 1 − ĝ = 0`, so a recurrent cell's initial state
    /// that the gate cancels still reads back ([`extract_recurrent`](super::extract_recurrent)).
    fn absorb_offset(&self, _offset: &[f64], _options: &SnapOptions) -> Option<Self> {
        None
    }
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

    /// [`Discretize::linear_map`].
    fn linear_map(&self) -> Option<Tensor<2>>;

    /// [`Discretize::linear_map_on`].
    fn linear_map_on(&self, x: &Tensor<2>, options: &SnapOptions) -> Option<Tensor<2>> {
        let _ = (x, options);
        self.linear_map()
    }

    /// [`Discretize::scale_free`].
    fn scale_free(&self) -> bool;

    /// [`Discretize::discretize`] of [`Discretize::absorb_offset`]: the layer read on inputs
    /// shifted by `offset`, `None` (the default) where it cannot cancel the shift.
    fn snap_layer_shifted(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        offset: &[f64],
        options: &SnapOptions,
    ) -> Option<Result<LayerSnap, FormulaError>> {
        let _ = (inputs, x, offset, options);
        None
    }
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

    fn linear_map(&self) -> Option<Tensor<2>> {
        Discretize::linear_map(self)
    }

    fn linear_map_on(&self, x: &Tensor<2>, options: &SnapOptions) -> Option<Tensor<2>> {
        Discretize::linear_map_on(self, x, options)
    }

    fn scale_free(&self) -> bool {
        Discretize::scale_free(self)
    }

    fn snap_layer_shifted(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        offset: &[f64],
        options: &SnapOptions,
    ) -> Option<Result<LayerSnap, FormulaError>> {
        let unit = Discretize::absorb_offset(self, offset, options)?;
        Some(unit.discretize(inputs, x, options))
    }
}

/// The discrete values a weight snaps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Levels {
    /// −1, 0 and 1: signed sums, and products and quotients (NAC, NAU, NALU, NAC•).
    SignedUnit,
    /// 0 and 1: an input left out or taken in (NMU).
    Unit,
    /// Every multiple of ½: the exponents of the power units (`a^2`, `a^-1`, `a^0.5`).
    Halves,
    /// Every integer: the coefficients of a stack of linear units read as one map (`2·x3`
    /// where `a` and `b` share `x3`).
    Integers,
}

impl Levels {
    /// The level nearest `v`, and its distance from `v` (the sparsity error of `v`).
    pub fn snap(self, v: f64) -> (f64, f64) {
        match self {
            Levels::SignedUnit => {
                let level = if v.abs() < 0.5 { 0.0 } else { v.signum() };
                (level, v.abs().min((1.0 - v.abs()).abs()))
            }
            Levels::Unit => {
                let level = if v < 0.5 { 0.0 } else { 1.0 };
                (level, v.abs().min((1.0 - v).abs()))
            }
            Levels::Halves => {
                let level = (2.0 * v).round() / 2.0;
                (level, (v - level).abs())
            }
            Levels::Integers => (v.round(), (v - v.round()).abs()),
        }
    }
}

/// A weight matrix `[d_in, d_out]` on the host, snapped to its [`Levels`], with the weights too
/// far from their snap as obstacles: the building block of a unit's [`Discretize`].
#[derive(Clone, Debug)]
pub struct SnappedWeights {
    d_out: usize,
    /// Snapped values, row-major.
    values: Vec<f64>,
    /// Each checked value's (input, output) and distance from its level.
    distances: Vec<((usize, usize), f64)>,
    sparsity_error: f64,
    obstacles: Vec<NotDiscrete>,
}

impl SnappedWeights {
    /// Snaps `w` to `levels`; a weight farther than `options.max_distance` from its level is
    /// an obstacle.
    pub fn new(w: Tensor<2>, levels: Levels, options: &SnapOptions) -> Self {
        let [_, d_out] = w.dims();
        let mut snapped = Self {
            d_out,
            values: Vec::new(),
            distances: Vec::new(),
            sparsity_error: 0.0,
            obstacles: Vec::new(),
        };
        for (k, v) in host_values(w).into_iter().enumerate() {
            let (level, distance) = levels.snap(v);
            snapped.values.push(level);
            snapped.check("W", (k / d_out, k % d_out), v, distance, options);
        }
        snapped
    }

    /// Counts `value` of `parameter` at `at` (input, output) as `distance` from discrete: in the
    /// sparsity error, and as an obstacle beyond `options.max_distance`.
    fn check(
        &mut self,
        parameter: &'static str,
        at: (usize, usize),
        value: f64,
        distance: f64,
        options: &SnapOptions,
    ) {
        self.sparsity_error = self.sparsity_error.max(distance);
        self.distances.push((at, distance));
        if distance > options.max_distance {
            self.obstacles.push(NotDiscrete::Weight {
                layer: String::new(),
                parameter,
                at,
                value,
                distance,
            });
        }
    }

    /// Keeps output `j`'s weights only where `keep[j]`: the others are zeroed and leave the
    /// obstacles and the sparsity error, for a path that a saturated gate shuts (the iNALU's),
    /// whose weights do not change the function.
    pub fn keep_columns(&mut self, keep: &[bool]) {
        let d_out = self.d_out;
        (self.values.iter_mut().enumerate())
            .filter(|(k, _)| !keep[k % d_out])
            .for_each(|(_, v)| *v = 0.0);
        self.obstacles.retain(|o| keep[o.output()]);
        self.distances.retain(|&((_, j), _)| keep[j]);
        self.sparsity_error = self.distances.iter().fold(0.0, |m, &(_, d)| m.max(d));
    }

    /// Whether every weight is within the tolerance of its level.
    pub fn is_discrete(&self) -> bool {
        self.obstacles.is_empty()
    }

    /// `(input index, weight)` of the non-zero weights of output `j`.
    pub fn column(&self, j: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.values
            .iter()
            .skip(j)
            .step_by(self.d_out)
            .copied()
            .enumerate()
            .filter(|&(_, w)| w != 0.0)
    }

    /// `Σ_i w_ij·inputs[i]` for each output `j` (of integer weights: [`Levels::SignedUnit`] or
    /// [`Levels::Unit`]).
    pub fn sums(&self, inputs: &[Expr]) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| {
                let terms = self.column(j).map(|(i, w)| (w as i64, inputs[i].clone()));
                Expr::weighted_sum(terms)
            })
            .collect()
    }

    /// `Π_i inputs[i]^w_ij` for each output `j` (of magnitudes `|inputs[i]|` when
    /// `magnitudes`).
    pub fn products(&self, inputs: &[Expr], magnitudes: bool) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| {
                let factors = self.column(j).map(|(i, w)| (inputs[i].clone(), w));
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

/// A layer of the power units (NPU, RealNPU): output `j` is `Π_i x_i^{W_ij}` over the inputs
/// whose relevance gate `ĝ_i` is open, with `W` (`w_re`) snapped to multiples of ½, the
/// imaginary weights `w_im` (if any) at 0 and every gate an output reads within
/// `options.gate_tolerance` of 0 (the input drops out, and its powers do not matter) or 1. For a
/// negative input the power
/// units compute `|x|^w·cos(π·w)`: the formula's `x^w` for integer `w`, 0 for a half.
pub fn power_layer(
    w_re: Tensor<2>,
    w_im: Option<Tensor<2>>,
    gate: Tensor<1>,
    inputs: &[Expr],
    options: &SnapOptions,
) -> LayerSnap {
    let mut w = SnappedWeights::new(w_re, Levels::Halves, options);
    let d_out = w.d_out;
    for (k, v) in w_im
        .map(host_values)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        w.check("W_im", (k / d_out, k % d_out), v, v.abs(), options);
    }
    let tol = options.gate_tolerance;
    let gates = SnapOptions {
        max_distance: tol,
        ..*options
    };
    for (i, g) in host_values(gate).into_iter().enumerate() {
        let row = i * d_out..(i + 1) * d_out;
        if g <= tol {
            // A shut gate makes the input's factor 1, whatever its powers.
            w.values[row].iter_mut().for_each(|v| *v = 0.0);
            w.obstacles
                .retain(|o| !matches!(o, NotDiscrete::Weight { at: (r, _), .. } if *r == i));
        } else if g < 1.0 - tol {
            let read: Vec<usize> = row.filter(|&k| w.values[k] != 0.0).collect();
            for k in read {
                w.check("ĝ", (i, k % d_out), g, g.min(1.0 - g), &gates);
            }
        }
    }
    let outputs = w.products(inputs, false);
    w.into_layer(outputs)
}

/// The values of `t`, row-major, in f64.
fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    let data = t.into_data().convert::<f64>();
    data.try_into_vec::<f64>().expect("f64 after convert")
}

/// `(min, max)` of each column of `t`: the range of each output's gate on the data.
pub fn column_ranges(t: Tensor<2>) -> Vec<(f64, f64)> {
    let [_, cols] = t.dims();
    let values = host_values(t);
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
