//! Reading the learned arithmetic back: snap a trained stack to discrete weights and render
//! the function it computes.
//!
//! A unit that has learned its task exactly has weights at discrete values: NAC, NAU and the
//! NALU's shared `W` at {−1, 0, 1}, NMU at {0, 1}, NALU gates saturated at 0 or 1 on the data.
//! [`extract`] snaps each weight to the nearest such value, composes the layers into one
//! [`Expr`] per output, and refuses (with [`NotDiscrete`] obstacles naming each weight and
//! its distance) when any weight is farther than [`SnapOptions::max_distance`] from its snap
//! or a gate is open. The *sparsity error* is Madsen & Johansen's `max min(|W|, |1 − |W||)`
//! over every weight.
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

use std::collections::BTreeMap;
use std::fmt;

use burn::tensor::Tensor;

use crate::{Nac, Nalu, Nau, Nmu, ops};

/// An arithmetic expression over the inputs `x0, x1, …` with integer coefficients and powers.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `Σ c_i·x_i`: input index to its non-zero coefficient (empty: the constant 0).
    Linear(BTreeMap<usize, i64>),
    /// `Π f^p` over `(f, p)` with `p ≠ 0` (empty: the constant 1); with `magnitudes`, each
    /// factor is taken in absolute value first.
    Product {
        /// The factors and their powers.
        factors: Vec<(Expr, i32)>,
        /// Whether each factor enters as `|f|`.
        magnitudes: bool,
    },
    /// `Σ c·e` of terms that are not all linear.
    Sum(Vec<(i64, Expr)>),
}

impl Expr {
    /// The input `x_i`.
    pub fn input(i: usize) -> Self {
        Expr::Linear(BTreeMap::from([(i, 1)]))
    }

    /// `Σ c·e`, merging linear terms and dropping zero coefficients.
    pub fn weighted_sum(terms: impl IntoIterator<Item = (i64, Expr)>) -> Self {
        let mut linear = BTreeMap::new();
        let mut others: Vec<(i64, Expr)> = Vec::new();
        for (c, e) in terms.into_iter().filter(|(c, _)| *c != 0) {
            match e {
                Expr::Linear(map) => {
                    for (i, k) in map {
                        *linear.entry(i).or_insert(0) += c * k;
                    }
                }
                Expr::Sum(inner) => others.extend(inner.into_iter().map(|(k, e)| (c * k, e))),
                product => others.push((c, product)),
            }
        }
        linear.retain(|_, c| *c != 0);
        if others.is_empty() {
            return Expr::Linear(linear);
        }
        if !linear.is_empty() {
            others.insert(0, (1, Expr::Linear(linear)));
        }
        match others.as_slice() {
            [(1, _)] => others.pop().expect("one term").1,
            _ => Expr::Sum(others),
        }
    }

    /// `Π f^p`, merging equal factors and dropping zero powers; one factor to the power 1
    /// without magnitudes is the factor itself.
    pub fn product(factors: impl IntoIterator<Item = (Expr, i32)>, magnitudes: bool) -> Self {
        let mut merged: Vec<(Expr, i32)> = Vec::new();
        for (f, p) in factors.into_iter().filter(|(_, p)| *p != 0) {
            match merged.iter_mut().find(|(g, _)| *g == f) {
                Some((_, q)) => *q += p,
                None => merged.push((f, p)),
            }
        }
        merged.retain(|(_, p)| *p != 0);
        if !magnitudes && merged.len() == 1 && merged[0].1 == 1 {
            return merged.pop().expect("one factor").0;
        }
        Expr::Product {
            factors: merged,
            magnitudes,
        }
    }

    /// The value on one input row.
    pub fn eval(&self, x: &[f64]) -> f64 {
        match self {
            Expr::Linear(map) => map.iter().map(|(&i, &c)| c as f64 * x[i]).sum(),
            Expr::Product {
                factors,
                magnitudes,
            } => factors
                .iter()
                .map(|(f, p)| {
                    let v = f.eval(x);
                    if *magnitudes { v.abs() } else { v }.powi(*p)
                })
                .product(),
            Expr::Sum(terms) => terms.iter().map(|(c, e)| *c as f64 * e.eval(x)).sum(),
        }
    }

    /// The expression as text, with `naming`'s groups (see the [module docs](self)).
    pub fn render(&self, naming: &Naming) -> String {
        match self {
            Expr::Linear(map) => join_terms(linear_terms(map, naming)),
            Expr::Product {
                factors,
                magnitudes,
            } => render_product(factors, *magnitudes, naming),
            // A linear part with coefficient 1 (where `weighted_sum` puts it) needs no brackets.
            Expr::Sum(terms) => join_terms(
                terms
                    .iter()
                    .map(|(c, e)| match (c, e) {
                        (1, Expr::Linear(_)) => (1, e.render(naming)),
                        _ => (*c, e.render_operand(naming, false)),
                    })
                    .collect(),
            ),
        }
    }

    /// Whether the rendered text is a single term (no `+` or `−` at the top level).
    fn is_atomic(&self, naming: &Naming) -> bool {
        match self {
            Expr::Linear(map) => matches!(linear_terms(map, naming).as_slice(), [(1, _)]),
            Expr::Product { .. } => true,
            Expr::Sum(_) => false,
        }
    }

    /// The text as an operand: parenthesised when it has several terms (or, as a factor,
    /// when it is a product itself).
    fn render_operand(&self, naming: &Naming, as_factor: bool) -> String {
        let text = self.render(naming);
        let nested_product = as_factor && matches!(self, Expr::Product { .. });
        if self.is_atomic(naming) && !nested_product {
            text
        } else {
            format!("({text})")
        }
    }
}

/// `(coefficient, text)` terms of a linear map: named groups first, then runs and inputs.
fn linear_terms(map: &BTreeMap<usize, i64>, naming: &Naming) -> Vec<(i64, String)> {
    let coefs = group_coefficients(map, &naming.groups);
    let mut rest = map.clone();
    let mut terms = Vec::new();
    for ((name, indices), &c) in naming.groups.iter().zip(&coefs) {
        if c != 0 {
            indices
                .iter()
                .for_each(|&i| *rest.entry(i).or_insert(0) -= c);
            terms.push((c, name.clone()));
        }
    }
    rest.retain(|_, c| *c != 0);
    let entries: Vec<(usize, i64)> = rest.into_iter().collect();
    let mut k = 0;
    while k < entries.len() {
        let (start, c) = entries[k];
        let mut end = k + 1;
        while end < entries.len() && entries[end] == (start + end - k, c) {
            end += 1;
        }
        if end - k >= 3 {
            terms.push((c, format!("sum(x[{start}..{}])", start + end - k)));
        } else {
            terms.extend(entries[k..end].iter().map(|&(i, c)| (c, format!("x{i}"))));
        }
        k = end;
    }
    terms
}

/// Coefficients of the named groups that leave the fewest inputs outside them (then use the
/// fewest groups), searched over −3..=3 for up to three groups, so that overlapping groups
/// decompose (`a + b` with shared inputs); more groups are matched one at a time. Groups only
/// absorb coefficients: each input's remainder lies between 0 and its coefficient.
fn group_coefficients(map: &BTreeMap<usize, i64>, groups: &[(String, Vec<usize>)]) -> Vec<i64> {
    let leftover = |coefs: &[i64]| {
        let mut rest = map.clone();
        for ((_, indices), &c) in groups.iter().zip(coefs) {
            indices
                .iter()
                .for_each(|&i| *rest.entry(i).or_insert(0) -= c);
        }
        let absorbed = rest.iter().all(|(i, &r)| {
            let k = map.get(i).copied().unwrap_or(0);
            r == 0 || (r.signum() == k.signum() && r.abs() <= k.abs())
        });
        let used = coefs.iter().filter(|&&c| c != 0).count();
        absorbed.then_some((rest.values().filter(|&&c| c != 0).count(), used))
    };
    if groups.len() > 3 {
        return groups
            .iter()
            .map(|(_, indices)| {
                let c = indices
                    .first()
                    .and_then(|i| map.get(i))
                    .copied()
                    .unwrap_or(0);
                if indices.iter().all(|i| map.get(i) == Some(&c)) {
                    c
                } else {
                    0
                }
            })
            .collect();
    }
    let mut best = vec![0; groups.len()];
    let mut best_score = leftover(&best).expect("no groups absorb nothing");
    let combos = 7usize.pow(groups.len() as u32);
    for code in 0..combos {
        let coefs: Vec<i64> = (0..groups.len())
            .map(|g| (code / 7usize.pow(g as u32) % 7) as i64 - 3)
            .collect();
        if let Some(score) = leftover(&coefs)
            && score < best_score
        {
            (best, best_score) = (coefs, score);
        }
    }
    best
}

/// `t1 + t2 − 2·t3`; `0` when there are no terms.
fn join_terms(terms: Vec<(i64, String)>) -> String {
    if terms.is_empty() {
        return "0".to_owned();
    }
    let mut out = String::new();
    for (k, (c, text)) in terms.into_iter().enumerate() {
        let sign = match (k, c < 0) {
            (0, false) => "",
            (0, true) => "−",
            (_, false) => " + ",
            (_, true) => " − ",
        };
        let scale = match c.unsigned_abs() {
            1 => String::new(),
            n => format!("{n}·"),
        };
        out.push_str(&format!("{sign}{scale}{text}"));
    }
    out
}

fn render_product(factors: &[(Expr, i32)], magnitudes: bool, naming: &Naming) -> String {
    let factor = |f: &Expr, p: i32| {
        let base = if magnitudes {
            format!("|{}|", f.render(naming))
        } else {
            f.render_operand(naming, true)
        };
        match p.unsigned_abs() {
            1 => base,
            n => format!("{base}^{n}"),
        }
    };
    let part = |positive: bool| -> Vec<String> {
        factors
            .iter()
            .filter(|(_, p)| (*p > 0) == positive)
            .map(|(f, p)| factor(f, *p))
            .collect()
    };
    let (num, den) = (part(true), part(false));
    let num = if num.is_empty() {
        "1".to_owned()
    } else {
        num.join("·")
    };
    match den.len() {
        0 => num,
        1 => format!("{num} / {}", den[0]),
        _ => format!("{num} / ({})", den.join("·")),
    }
}

/// Names for groups of inputs, used by [`Expr::render`] in place of their sum.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    groups: Vec<(String, Vec<usize>)>,
}

impl Naming {
    /// No groups: every input is `x{i}`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a group: when all of `indices` share one coefficient, they render as `name`.
    pub fn with_group(mut self, name: impl Into<String>, indices: &[usize]) -> Self {
        let mut indices = indices.to_vec();
        indices.sort_unstable();
        self.groups.push((name.into(), indices));
        self
    }
}

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
        /// The layer, as [`extract`] names it (`layer 0`, `layer 1`, …).
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
    fn output(&self) -> usize {
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
    /// The stack holds a unit this module cannot read (iNALU, NPU, RealNPU).
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

/// A unit whose weights can be snapped to discrete values.
pub trait Discretize {
    /// The layer's formula, given its inputs as expressions and its input values on the
    /// data (`[rows, d_input]`, used by input-dependent gates).
    fn discretize(&self, inputs: &[Expr], x: &Tensor<2>, options: &SnapOptions) -> LayerSnap;

    /// The layer's forward pass on a rank-2 batch.
    fn forward_2d(&self, x: Tensor<2>) -> Tensor<2>;
}

/// A weight matrix `[d_in, d_out]` on the host, snapped.
struct Snapped {
    d_out: usize,
    /// Snapped values, row-major.
    values: Vec<i64>,
    sparsity_error: f64,
    obstacles: Vec<NotDiscrete>,
}

impl Snapped {
    /// Snaps `w` to {−1, 0, 1} (or {0, 1} when `nonnegative`) with `options.max_distance`.
    fn new(w: Tensor<2>, nonnegative: bool, options: &SnapOptions) -> Self {
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
    fn column(&self, j: usize) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.values
            .iter()
            .skip(j)
            .step_by(self.d_out)
            .copied()
            .enumerate()
            .filter(|&(_, w)| w != 0)
    }

    /// `Σ_i w_ij·inputs[i]` for each output `j`.
    fn sums(&self, inputs: &[Expr]) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| Expr::weighted_sum(self.column(j).map(|(i, w)| (w, inputs[i].clone()))))
            .collect()
    }

    /// `Π_i inputs[i]^w_ij` for each output `j`.
    fn products(&self, inputs: &[Expr], magnitudes: bool) -> Vec<Expr> {
        (0..self.d_out)
            .map(|j| {
                let factors = self.column(j).map(|(i, w)| (inputs[i].clone(), w as i32));
                Expr::product(factors, magnitudes)
            })
            .collect()
    }

    fn into_layer(self, outputs: Vec<Expr>) -> LayerSnap {
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

impl Discretize for Nac {
    fn discretize(&self, inputs: &[Expr], _: &Tensor<2>, options: &SnapOptions) -> LayerSnap {
        let w = Snapped::new(self.weight(), false, options);
        let outputs = w.sums(inputs);
        w.into_layer(outputs)
    }

    fn forward_2d(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }
}

impl Discretize for Nau {
    fn discretize(&self, inputs: &[Expr], _: &Tensor<2>, options: &SnapOptions) -> LayerSnap {
        let w = Snapped::new(self.weight.val(), false, options);
        let outputs = w.sums(inputs);
        w.into_layer(outputs)
    }

    fn forward_2d(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }
}

impl Discretize for Nmu {
    fn discretize(&self, inputs: &[Expr], _: &Tensor<2>, options: &SnapOptions) -> LayerSnap {
        let w = Snapped::new(self.weight.val(), true, options);
        let outputs = w.products(inputs, false);
        w.into_layer(outputs)
    }

    fn forward_2d(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }
}

impl Discretize for Nalu {
    /// Gated: per output, the additive path where the gate is ≈ 1 on all rows of `x`, the
    /// multiplicative path where it is ≈ 0. Ungated: the sum of both paths.
    fn discretize(&self, inputs: &[Expr], x: &Tensor<2>, options: &SnapOptions) -> LayerSnap {
        let w = Snapped::new(self.weight(), false, options);
        let (add, mul) = (w.sums(inputs), w.products(inputs, true));
        let mut obstacles = Vec::new();
        let outputs = match &self.gate {
            None => add
                .into_iter()
                .zip(mul)
                .map(|(a, m)| Expr::weighted_sum([(1, a), (1, m)]))
                .collect(),
            Some(gate) => {
                let g = ops::sigmoid(ops::matmul_last(x.clone(), gate.val()));
                let ranges = column_ranges(g);
                let tol = options.gate_tolerance;
                add.into_iter()
                    .zip(mul)
                    .zip(ranges)
                    .enumerate()
                    .map(|(j, ((a, m), (lo, hi)))| {
                        if lo >= 1.0 - tol {
                            a
                        } else if hi <= tol {
                            m
                        } else {
                            obstacles.push(NotDiscrete::Gate {
                                layer: String::new(),
                                output: j,
                                range: (lo, hi),
                            });
                            Expr::weighted_sum([])
                        }
                    })
                    .collect()
            }
        };
        let mut layer = w.into_layer(outputs);
        layer.obstacles.extend(obstacles);
        layer
    }

    fn forward_2d(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward(x)
    }
}

/// `(min, max)` of each column of `t`.
fn column_ranges(t: Tensor<2>) -> Vec<(f64, f64)> {
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
    layers: &[&dyn Discretize],
    x: Tensor<2>,
    options: &SnapOptions,
) -> Result<Formula, FormulaError> {
    let [_, d_input] = x.dims();
    let mut exprs: Vec<Expr> = (0..d_input).map(Expr::input).collect();
    let mut snaps = Vec::with_capacity(layers.len());
    let mut h = x;
    for (k, layer) in layers.iter().enumerate() {
        let snap = layer.discretize(&exprs, &h, options);
        exprs = snap.outputs.clone();
        snaps.push(snap);
        if k + 1 < layers.len() {
            h = layer.forward_2d(h);
        }
    }
    let sparsity_error = snaps.iter().map(|s| s.sparsity_error).fold(0.0, f64::max);
    let obstacles = live_obstacles(snaps);
    if !obstacles.is_empty() {
        return Err(FormulaError::NotDiscrete {
            sparsity_error,
            obstacles,
        });
    }
    Ok(Formula {
        outputs: exprs,
        sparsity_error,
    })
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
    }
}

/// How far from discrete an obstacle is (an open gate's distance is its range's from 0 or 1).
fn severity(o: &NotDiscrete) -> f64 {
    match o {
        NotDiscrete::Weight { distance, .. } => *distance,
        NotDiscrete::Gate {
            range: (lo, hi), ..
        } => (1.0 - lo).min(*hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NacConfig, NaluConfig, NauConfig, NmuConfig};
    use burn::module::Param;
    use burn::tensor::{Device, TensorData};

    fn matrix(rows: &[&[f32]]) -> Tensor<2> {
        let (r, c) = (rows.len(), rows[0].len());
        let flat: Vec<f32> = rows.iter().flat_map(|row| row.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [r, c]), &Device::default())
    }

    fn lin(terms: &[(usize, i64)]) -> Expr {
        Expr::Linear(terms.iter().copied().collect())
    }

    #[test]
    fn sums_render_with_signs_runs_and_groups() {
        let none = Naming::new();
        assert_eq!(
            lin(&[(3, 1), (17, 1), (42, -1)]).render(&none),
            "x3 + x17 − x42"
        );
        assert_eq!(lin(&[(0, -1), (5, 2)]).render(&none), "−x0 + 2·x5");
        assert_eq!(lin(&[]).render(&none), "0");
        let run: Vec<(usize, i64)> = (0..50).map(|i| (i, 1)).chain([(60, -1)]).collect();
        assert_eq!(lin(&run).render(&none), "sum(x[0..50]) − x60");
        let ab = Naming::new()
            .with_group("a", &[4, 1, 7])
            .with_group("b", &[2, 3]);
        assert_eq!(
            lin(&[(1, 1), (4, 1), (7, 1), (2, -1), (3, -1)]).render(&ab),
            "a − b"
        );
        // A group with mixed coefficients stays spelled out.
        assert_eq!(lin(&[(1, 1), (4, 1), (7, -1)]).render(&ab), "x1 + x4 − x7");
        // Overlapping groups: a = x0..x3, b = x2..x5 share x2; a + b puts 2 on x2.
        let overlap = Naming::new()
            .with_group("a", &[0, 1, 2])
            .with_group("b", &[2, 3, 4]);
        let a_plus_b = lin(&[(0, 1), (1, 1), (2, 2), (3, 1), (4, 1)]);
        assert_eq!(a_plus_b.render(&overlap), "a + b");
        assert_eq!(
            lin(&[(0, 1), (1, 1), (3, -1), (4, -1)]).render(&overlap),
            "a − b"
        );
        assert_eq!(
            lin(&[(0, 2), (1, 2), (2, 2), (9, 1)]).render(&overlap),
            "2·a + x9"
        );
    }

    #[test]
    fn products_render_factors_divisors_and_powers() {
        let n = Naming::new();
        let (x1, x2, x5) = (Expr::input(1), Expr::input(2), Expr::input(5));
        let sum12 = Expr::weighted_sum([(1, x1.clone()), (1, x2.clone())]);
        assert_eq!(
            Expr::product([(sum12.clone(), 1), (x5.clone(), 1)], false).render(&n),
            "(x1 + x2)·x5"
        );
        assert_eq!(
            Expr::product([(x1.clone(), 1), (x2.clone(), -1)], false).render(&n),
            "x1 / x2"
        );
        assert_eq!(
            Expr::product([(x1.clone(), 1), (x1.clone(), 1)], false).render(&n),
            "x1^2"
        );
        assert_eq!(
            Expr::product([(x1.clone(), -1), (x2.clone(), -1)], false).render(&n),
            "1 / (x1·x2)"
        );
        assert_eq!(Expr::product([(x1.clone(), 1)], false), x1);
        assert_eq!(
            Expr::product([(x1.clone(), 1), (x5, -1)], true).render(&n),
            "|x1| / |x5|"
        );
        assert_eq!(
            Expr::product([(x1, 1), (x2, -1)], true).render(&n),
            "|x1| / |x2|"
        );
        let sum =
            Expr::weighted_sum([(1, sum12.clone()), (-1, Expr::product([(sum12, 2)], false))]);
        assert_eq!(sum.render(&n), "x1 + x2 − (x1 + x2)^2");
    }

    #[test]
    fn expressions_evaluate_what_they_render() {
        let x = [2.0, -3.0, 5.0];
        let a = Expr::weighted_sum([(1, Expr::input(0)), (1, Expr::input(2))]);
        assert_eq!(a.eval(&x), 7.0);
        let p = Expr::product([(a.clone(), 2), (Expr::input(1), -1)], false);
        assert_eq!(p.eval(&x), 49.0 / -3.0);
        let m = Expr::product([(Expr::input(1), 1)], true);
        assert_eq!(m.eval(&x), 3.0);
        assert_eq!(Expr::weighted_sum([(1, a), (-2, m)]).eval(&x), 1.0);
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
}
