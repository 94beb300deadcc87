//! The differentiable DAG unit (DMU) of arXiv 2509.08180 (2025), as its authors' `DAGLayer`
//! computes it (marict/nalm-benchmark at 9350f32, `stable_nalu/layer/dag.py`).

use std::f64::consts::PI;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{softmax, softplus};
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, NotDiscrete, SnapOptions, column_ranges,
};
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`Dmu`] layer using the [init function](DmuConfig::init).
#[derive(Config, Debug)]
pub struct DmuConfig {
    /// The size of the input features (the DAG's first nodes).
    pub d_input: usize,
    /// Steps of the DAG (their `--dag-depth`): each appends one node computed from the earlier.
    #[config(default = 1)]
    pub depth: usize,
    /// Normalise the heads' input with a `LayerNorm`, as theirs by default.
    #[config(default = true)]
    pub use_norm: bool,
    /// Read the output through a learned selector over the step nodes (`None`: with more than
    /// one step, as their benchmark script decides); without it, the last node.
    #[config(default = "None")]
    pub output_selector: Option<bool>,
    /// Operand weights fixed for every step and row (one per node, later nodes' ignored)
    /// instead of predicted: their `--freeze-O`, with which their benchmark script ran it, the
    /// target's pattern given so that only the gates are learned. A diagnostic, not a model.
    #[config(default = "None")]
    pub frozen_operands: Option<Vec<f64>>,
}

/// Differentiable DAG unit: linear heads predict, from each input row, a plan of `depth`
/// arithmetic steps over the inputs, which an analytic executor then runs.
///
/// The nodes start as the inputs `x` (magnitudes `|x|`, signs `±1`). From `h = LayerNorm(x)`:
/// operand weights `O = tanh(h·Ô_s) ⊙ softplus(h·Ô_m)` (`[depth, nodes]`, each step seeing only
/// the nodes before it), domain gates `(g_lin, g_log) = softmax(h·Ĝ)` per step, and selector
/// logits `h·Ŝ`. Step `k` appends the node
///
/// - `r_lin = Σ_j O_kj·v_j` and `r_log = Σ_j O_kj·log(max(|v_j|, m_min))`,
/// - sign `g_lin·tanh(r_lin / 10⁻⁴) + g_log·cos(π·Σ_j |O_kj|·[v_j < 0])`,
/// - magnitude `clamp(g_lin·√(r_lin² + 10⁻⁸) + g_log·exp(softclamp(r_log, ±L)), m_min, m_max)`,
///
/// a signed sum in the linear domain, a product of powers in the log domain. The output is the
/// selector's softmax mix of the step nodes (or the last node). Trained soft; its authors
/// evaluate it [discrete](Dmu::discrete): each gate at its larger side, `O` rounded to −1, 0 or
/// 1, the selector at its largest logit, with wider guards (`m_min`, `m_max`, `L`: 1e-11, 1e6,
/// ln 1e6 − 1 while training; 1e-20, 1e20, 50 discrete). One output; no regulariser.
///
/// Computed in the device's precision (the authors run the executor in f64 and the heads in
/// f32). Should be created with [`DmuConfig`].
#[derive(Module, Debug)]
pub struct Dmu {
    /// The heads' input normalisation, when on.
    pub input_norm: Option<LayerNorm>,
    /// `Ô_m`: the operand magnitudes' head, `d_input → depth·nodes`.
    pub o_mag: Linear,
    /// `Ô_s`: the operand signs' head, `d_input → depth·nodes`.
    pub o_sign: Linear,
    /// `Ĝ`: the domain gates' head, `d_input → depth·2` (linear, log per step).
    pub gate: Linear,
    /// `Ŝ`: the output selector's head, `d_input → depth`, when on.
    pub selector: Option<Linear>,
    d_input: usize,
    depth: usize,
    discrete: bool,
    frozen_operands: Option<Vec<f64>>,
}

/// The guards of the executor: `(m_min, m_max, L)`.
type Guards = (f64, f64, f64);
const TRAINING_GUARDS: Guards = (1e-11, 1e6, 12.815_510_557_964_274); // ln 1e6 − 1
const DISCRETE_GUARDS: Guards = (1e-20, 1e20, 50.0);
/// The width of `tanh(r / ε)`, their smooth sign of a linear result.
const SIGN_EPS: f64 = 1e-4;
/// `LayerNorm`'s ε (torch's and Burn's default, theirs).
const LAYER_NORM_EPS: f64 = 1e-5;

impl DmuConfig {
    /// Checks the config: `d_input` and `depth` must be at least 1, and `frozen_operands`
    /// hold one finite weight per node (`d_input + depth`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("DmuConfig", "d_input", self.d_input)?;
        ConfigError::check_size("DmuConfig", "depth", self.depth)?;
        match &self.frozen_operands {
            Some(o) if o.len() != self.d_input + self.depth || o.iter().any(|v| !v.is_finite()) => {
                let nodes = self.d_input + self.depth;
                let reason = format!("must hold {nodes} finite weights (one per node), got {o:?}");
                Err(ConfigError::new("DmuConfig", "frozen_operands", reason))
            }
            _ => Ok(()),
        }
    }

    /// Initialises a new [`Dmu`] on `device`: Xavier-uniform head weights and zero biases (as
    /// theirs), the `LayerNorm` at the identity.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`DmuConfig::validate`].
    pub fn init(&self, device: &Device) -> Dmu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let (n, depth) = (self.d_input, self.depth);
        let head = |d_out: usize| Linear {
            weight: ops::init::param(
                &Initializer::XavierUniform { gain: 1.0 },
                [n, d_out],
                Some(n),
                Some(d_out),
                device,
            ),
            bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
        };
        let selector = self.output_selector.unwrap_or(depth > 1);
        Dmu {
            input_norm: (self.use_norm).then(|| {
                LayerNormConfig::new(n)
                    .with_epsilon(LAYER_NORM_EPS)
                    .init(device)
            }),
            o_mag: head(depth * (n + depth)),
            o_sign: head(depth * (n + depth)),
            gate: head(depth * 2),
            selector: selector.then(|| head(depth)),
            d_input: n,
            depth,
            discrete: false,
            frozen_operands: self.frozen_operands.clone(),
        }
    }
}

impl Dmu {
    /// Runs the plan the heads predict for each row of `input` (see [`Dmu`]).
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]` (any rank)
    /// - output: `[..., 1]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the layer and both sizes.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// The unit as its authors evaluate it: gates, operand weights and selector made hard
    /// (see [`Dmu`]). Gradients do not pass the hard choices; evaluation only.
    pub fn discrete(self) -> Self {
        Self {
            discrete: true,
            ..self
        }
    }

    /// Whether the unit computes [discrete](Dmu::discrete)ly.
    pub fn is_discrete(&self) -> bool {
        self.discrete
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.d_input
    }

    /// Steps of the DAG.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Each member's heads on its rows `x` (`[members, rows, d_input]`), its rows flattened:
    /// `O` `[members·rows, depth, nodes]` (the frozen operands where set), `g`
    /// `[members·rows, depth, 2]` and the selector's logits `[members·rows, depth]`.
    fn plan(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>, Option<Tensor<2>>) {
        let [m, rows, n] = x.dims();
        let (depth, nodes) = (self.depth, n + self.depth);
        let h = match &self.input_norm {
            Some(norm) => layer_norm_members(norm, x),
            None => x,
        };
        let head = |linear: &Linear| {
            let y = linear_members(linear, h.clone());
            let width = y.dims()[2];
            y.reshape([m * rows, width])
        };
        let g = softmax(head(&self.gate).reshape([m * rows, depth, 2]), 2);
        let selector = self.selector.as_ref().map(head);
        let o = match &self.frozen_operands {
            Some(frozen) => {
                let row = Tensor::<1>::from_floats(frozen.as_slice(), &g.device());
                row.reshape([1, 1, nodes]).expand([m * rows, depth, nodes])
            }
            None => {
                let o_sign = head(&self.o_sign).reshape([m * rows, depth, nodes]).tanh();
                let o_mag = head(&self.o_mag).reshape([m * rows, depth, nodes]);
                o_sign.mul(softplus(o_mag, 1.0))
            }
        };
        (o, g, selector)
    }

    /// The DAG run on every row: `x` `[rows, d_input]` (all members' rows in turn), the plan of
    /// [`Dmu::plan`]; `[rows, 1]`.
    fn execute(&self, x: Tensor<2>, plan: (Tensor<3>, Tensor<3>, Option<Tensor<2>>)) -> Tensor<2> {
        let [b, n] = x.dims();
        let depth = self.depth;
        let (mut o, mut g, selector) = plan;
        let guards = match self.discrete {
            true => {
                o = o.round().clamp(-1.0, 1.0);
                let lin = g.clone().narrow(2, 0, 1);
                let lin = lin.greater_equal(g.narrow(2, 1, 1)).float();
                g = Tensor::cat(vec![lin.clone(), ops::one_minus(lin)], 2);
                DISCRETE_GUARDS
            }
            false => TRAINING_GUARDS,
        };
        let sign = x.ones_like().mask_fill(x.clone().lower_elem(0.0), -1.0);
        let (mut mag, mut sign) = (x.abs(), sign);
        for step in 0..depth {
            // Each step reads only the nodes before it (their causal mask).
            let width = n + step;
            let o_k = o
                .clone()
                .slice([0..b, step..step + 1, 0..width])
                .reshape([b, width]);
            let g_k = g
                .clone()
                .slice([0..b, step..step + 1, 0..2])
                .reshape([b, 2]);
            let (m, s) = step_node(o_k, g_k, mag.clone(), sign.clone(), guards);
            mag = Tensor::cat(vec![mag, m], 1);
            sign = Tensor::cat(vec![sign, s], 1);
        }
        let values = sign.mul(mag).narrow(1, n, depth);
        match (selector, self.discrete) {
            (None, _) => values.narrow(1, depth - 1, 1),
            (Some(logits), true) => values.gather(1, logits.argmax(1)),
            (Some(logits), false) => softmax(logits, 1).mul(values).sum_dim(1),
        }
    }
}

impl ArithmeticUnit for Dmu {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let dims = input.dims();
        ops::check_input("Dmu", &dims, self.d_input, members);
        let rows: usize = dims[..D - 1].iter().product();
        let x = input.reshape([members, rows / members, self.d_input]);
        let plan = self.plan(x.clone());
        let y = self.execute(x.reshape([rows, self.d_input]), plan);
        let mut out = dims;
        out[D - 1] = 1;
        y.reshape(out)
    }

    /// The unit as its authors evaluate it: [`Dmu::discrete`].
    fn snap(self) -> Self {
        self.discrete()
    }
}

impl Discretize for Dmu {
    /// The plan the heads predict on the rows of `x`, when every row gets the same one: step
    /// `k` is `Σ_j O_kj·v_j` (linear gate) or the signed `Π_j v_j^{O_kj}` (log gate) of the
    /// nodes before it, `O` rounded to −1, 0 or 1; the output the selected node. Soft, every `O`
    /// must lie within the tolerance of its rounded value and every gate within its tolerance
    /// of 0 or 1; [discrete](Dmu::discrete), the plan is what the unit computes.
    fn discretize(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let [rows, n] = x.dims();
        let (o, g, selector) = self.plan(x.clone().reshape([1, rows, n]));
        let host =
            |t: Tensor<2>| -> Vec<f32> { t.into_data().convert::<f32>().try_to_vec().unwrap() };
        let (depth, nodes) = (self.depth, n + self.depth);
        let o = host(o.reshape([rows, depth * nodes]));
        let gates = column_ranges(g.narrow(2, 0, 1).reshape([rows, depth]));
        let chosen = selector.map(|s| host(s.argmax(1).float()));
        let tolerance = if self.discrete {
            f64::INFINITY
        } else {
            options.max_distance
        };
        let mut obstacles = Vec::new();
        let mut sparsity_error = 0.0f64;
        let round = |v: f32| f64::from(v).round().clamp(-1.0, 1.0);
        // Per operand weight (step k, node j), its farthest value from discrete over the rows,
        // and whether every row rounds it as row 0 does: one obstacle at most each.
        for k in 0..depth {
            for j in 0..n + k {
                let column = (0..rows).map(|r| o[(r * depth + k) * nodes + j]);
                let (mut value, mut distance, mut same) = (o[k * nodes + j], 0.0f64, true);
                for v in column {
                    let d = (f64::from(v) - round(v)).abs();
                    same &= round(v) == round(o[k * nodes + j]);
                    if d > distance {
                        (value, distance) = (v, d);
                    }
                }
                sparsity_error = sparsity_error.max(distance);
                if distance > tolerance || !same {
                    let (layer, value) = (String::new(), f64::from(value));
                    let at = (j, k);
                    obstacles.push(NotDiscrete::Weight {
                        layer,
                        parameter: "O",
                        at,
                        value,
                        distance,
                    });
                }
            }
        }
        // Per step, the linear gate's range over the rows: one domain on every row, or an obstacle.
        for (k, &(lo, hi)) in gates.iter().enumerate() {
            let same = match self.discrete {
                true => lo >= 0.5 || hi < 0.5, // each row takes the larger side (ties: linear)
                false => lo >= 1.0 - options.gate_tolerance || hi <= options.gate_tolerance,
            };
            if !same {
                let (layer, range) = (String::new(), (lo, hi));
                obstacles.push(NotDiscrete::Gate {
                    layer,
                    output: k,
                    range,
                });
            }
        }
        let last = depth - 1;
        let output = match &chosen {
            Some(c) if c.iter().any(|&v| v != c[0]) => {
                let range = (0.0, last as f64);
                obstacles.push(NotDiscrete::Gate {
                    layer: String::new(),
                    output: depth,
                    range,
                });
                last
            }
            Some(c) => c[0] as usize,
            None => last,
        };
        if !obstacles.is_empty() {
            return Err(FormulaError::NotDiscrete {
                sparsity_error,
                obstacles,
            });
        }
        let mut exprs: Vec<Expr> = inputs.to_vec();
        let mut support: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        for k in 0..depth {
            let weights: Vec<(usize, f64)> = (0..n + k)
                .map(|j| (j, round(o[k * nodes + j])))
                .filter(|&(_, w)| w != 0.0)
                .collect();
            let expr = match gates[k].0 >= 0.5 {
                true => {
                    Expr::weighted_sum(weights.iter().map(|&(j, w)| (w as i64, exprs[j].clone())))
                }
                false => Expr::product(weights.iter().map(|&(j, w)| (exprs[j].clone(), w)), false),
            };
            let mut used: Vec<usize> = weights
                .iter()
                .flat_map(|&(j, _)| support[j].clone())
                .collect();
            used.sort_unstable();
            used.dedup();
            exprs.push(expr);
            support.push(used);
        }
        Ok(LayerSnap {
            outputs: vec![exprs[n + output].clone()],
            support: vec![support[n + output].clone()],
            sparsity_error,
            obstacles,
        })
    }
}

/// `LayerNorm` over the last axis of each member's rows (`[members, rows, n]`, the members'
/// `γ` and `β` stacked): `(x − mean)/√(var + 1e-5)·γ + β`, torch's and Burn's formula.
fn layer_norm_members(norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
    let [m, _, n] = x.dims();
    let centred = x.clone().sub(x.mean_dim(2));
    let var = centred.clone().powi_scalar(2).mean_dim(2);
    let y = centred.div(var.add_scalar(LAYER_NORM_EPS).sqrt());
    let y = y.mul(norm.gamma.val().reshape([m, 1, n]));
    match &norm.beta {
        Some(beta) => y.add(beta.val().reshape([m, 1, n])),
        None => y,
    }
}

/// A linear head of each member on its rows: `[members, rows, d_in]` times the members' stacked
/// `[members·d_in, d_out]` weights, plus their stacked biases.
fn linear_members(linear: &Linear, h: Tensor<3>) -> Tensor<3> {
    let [m, _, n] = h.dims();
    let weight = linear.weight.val();
    let k = weight.dims()[1];
    let y = h.matmul(weight.reshape([m, n, k]));
    match &linear.bias {
        Some(bias) => y.add(bias.val().reshape([m, 1, k])),
        None => y,
    }
}

/// One step's node, `(magnitude, sign)` (`[batch, 1]` each), from the operand weights `o`
/// (`[batch, width]`), the gates `g` (`[batch, 2]`: linear, log) and the nodes so far.
fn step_node(
    o: Tensor<2>,
    g: Tensor<2>,
    mag: Tensor<2>,
    sign: Tensor<2>,
    (m_min, m_max, limit): Guards,
) -> (Tensor<2>, Tensor<2>) {
    let (g_lin, g_log) = (g.clone().narrow(1, 0, 1), g.narrow(1, 1, 1));
    let r_lin = o.clone().mul(sign.clone().mul(mag.clone())).sum_dim(1);
    let r_log = o.clone().mul(mag.clamp_min(m_min).log()).sum_dim(1);
    let linear_sign = r_lin.clone().div_scalar(SIGN_EPS).tanh();
    // Σ |O|·[v < 0]: the power of −1 in the product's sign.
    let negatives = o.abs().mul(ops::one_minus(sign).div_scalar(2.0)).sum_dim(1);
    let log_sign = negatives.mul_scalar(PI).cos();
    let new_sign = g_lin
        .clone()
        .mul(linear_sign)
        .add(g_log.clone().mul(log_sign));
    // A smooth |r_lin|, so that the gradient stays finite at 0.
    let linear_mag = r_lin.powi_scalar(2).add_scalar(1e-8).sqrt();
    let lin = linear_mag.clamp_min(m_min);
    let log = soft_clamp(r_log, limit).exp();
    let new_mag = g_lin.mul(lin).add(g_log.mul(log)).clamp(m_min, m_max);
    (new_mag, new_sign)
}

/// `x` softly held within `±limit`: `−L + softplus(L − softplus(L − x) + L)`, their
/// `soft_floor(soft_ceiling(x))`.
fn soft_clamp(x: Tensor<2>, limit: f64) -> Tensor<2> {
    let ceiling = softplus(x.neg().add_scalar(limit), 1.0)
        .neg()
        .add_scalar(limit);
    softplus(ceiling.add_scalar(limit), 1.0).sub_scalar(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Population;
    use burn::tensor::Distribution;

    /// A DMU of one step whose plan ignores the input: zero head weights, biases that set the
    /// operand weights to `o` (`tanh(±20) = ±1`, `softplus(0.5413) ≈ 1`, rounded to 1 when
    /// discrete) and the gate to the linear (`lin`) or the log domain.
    fn fixed_plan(o: [f32; 2], lin: bool, device: &Device) -> Dmu {
        let mut dmu = DmuConfig::new(2).with_use_norm(false).init(device);
        let zero = |d_out: usize| Param::from_tensor(Tensor::<2>::zeros([2, d_out], device));
        let bias = |b: Vec<f32>| {
            Some(Param::from_tensor(Tensor::<1>::from_floats(
                b.as_slice(),
                device,
            )))
        };
        // Operand weights over the 3 nodes (x0, x1 and the step's own, masked).
        (dmu.o_sign.weight, dmu.o_sign.bias) = (zero(3), bias(vec![20.0 * o[0], 20.0 * o[1], 0.0]));
        (dmu.o_mag.weight, dmu.o_mag.bias) = (zero(3), bias(vec![0.5413; 3]));
        let g = if lin { [5.0, -5.0] } else { [-5.0, 5.0] };
        (dmu.gate.weight, dmu.gate.bias) = (zero(2), bias(g.to_vec()));
        dmu.discrete()
    }

    /// Discrete, the fixed plans are exact arithmetic on signed inputs: sums and differences to
    /// f32 rounding (the smooth `|r| = √(r² + 10⁻⁸)` moves |r| ≥ 0.5 by under 2e-8 of itself),
    /// products and quotients within 1e-5 relative (the log domain's soft clamp at ±50 rounds
    /// its argument to f32's spacing at 50, 4e-6, which `exp` turns into relative error).
    #[test]
    fn a_discrete_plan_computes_exact_arithmetic() {
        let device = Device::default();
        let rows = [[3.0f32, 4.0], [-0.5, 8.0], [12.5, -0.25], [-2.0, -6.0]];
        let x = Tensor::<2>::from_data(rows, &device);
        type Case = ([f32; 2], bool, fn(f32, f32) -> f32);
        let cases: [Case; 4] = [
            ([1.0, 1.0], true, |a, b| a + b),
            ([1.0, -1.0], true, |a, b| a - b),
            ([1.0, 1.0], false, |a, b| a * b),
            ([1.0, -1.0], false, |a, b| a / b),
        ];
        for (o, lin, op) in cases {
            let y = fixed_plan(o, lin, &device).forward(x.clone());
            let got = y.into_data().try_to_vec::<f32>().unwrap();
            for (r, g) in rows.iter().zip(got) {
                let want = op(r[0], r[1]);
                let rel = ((g - want) / want).abs();
                assert!(
                    rel < 1e-5,
                    "O = {o:?}, linear {lin}, row {r:?}: {g} vs {want}"
                );
            }
        }
    }

    /// The fixed plans read back as their formulas; a plan that differs between rows does not.
    #[test]
    fn a_discrete_plan_reads_back_as_its_formula() {
        let device = Device::default();
        let x = Tensor::<2>::from_data([[3.0f32, 4.0], [-0.5, 8.0]], &device);
        let (a, b) = (Expr::input(0), Expr::input(1));
        let read = |dmu: &Dmu| dmu.discretize(&[a.clone(), b.clone()], &x, &SnapOptions::default());
        let sum = read(&fixed_plan([1.0, 1.0], true, &device)).unwrap();
        assert_eq!(
            sum.outputs,
            [Expr::weighted_sum([(1, a.clone()), (1, b.clone())])]
        );
        assert_eq!(sum.support, [vec![0, 1]]);
        let quotient = read(&fixed_plan([1.0, -1.0], false, &device)).unwrap();
        let want = Expr::product([(a.clone(), 1.0), (b.clone(), -1.0)], false);
        assert_eq!(quotient.outputs, [want]);
        // The gate now follows the input: linear for x0 > 0, log for x0 < 0.
        let mut varying = fixed_plan([1.0, 1.0], true, &device);
        varying.gate.weight = Param::from_data([[20.0f32, -20.0], [0.0, 0.0]], &device);
        varying.input_norm = None;
        assert!(matches!(
            read(&varying),
            Err(FormulaError::NotDiscrete { .. })
        ));
    }

    #[test]
    fn outputs_one_value_per_row_of_any_rank() {
        let device = Device::default();
        device.seed(3);
        let dmu = DmuConfig::new(3).with_depth(2).init(&device);
        assert!(dmu.selector.is_some() && !dmu.is_discrete());
        let x = Tensor::<3>::ones([2, 5, 3], &device);
        assert_eq!(dmu.forward(x.clone()).dims(), [2, 5, 1]);
        assert_eq!(dmu.discrete().forward(x).dims(), [2, 5, 1]);
        assert!(DmuConfig::new(3).init(&device).selector.is_none());
    }

    /// A population computes each member as the member alone, soft and discrete. A batched
    /// head may sum its 3 products in another order than a lone one: a few ulp (~2e-7) of each
    /// head output, which the executor amplifies at most by its smooth sign's 1/10⁻⁴ where a
    /// linear result falls near 0: 2e-3 of a value bounds it.
    #[test]
    fn a_population_computes_each_member_as_alone() {
        let device = Device::default();
        let config = DmuConfig::new(3).with_depth(2);
        let members: Vec<Dmu> = (0..3)
            .map(|seed| {
                device.seed(seed);
                config.init(&device)
            })
            .collect();
        device.seed(9);
        let x = Tensor::<3>::random([3, 5, 3], Distribution::Uniform(-3.0, 3.0), &device);
        for discrete in [false, true] {
            let members: Vec<Dmu> = (members.iter())
                .map(|u| {
                    if discrete {
                        u.clone().discrete()
                    } else {
                        u.clone()
                    }
                })
                .collect();
            let population = Population::from_members(members.clone());
            let together = population
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (k, member) in members.iter().enumerate() {
                let alone = member.forward(x.clone().narrow(0, k, 1).reshape([5, 3]));
                let alone = alone.into_data().try_to_vec::<f32>().unwrap();
                for (a, t) in alone.iter().zip(&together[5 * k..5 * (k + 1)]) {
                    let tolerance = 2e-3 * a.abs().max(1.0);
                    assert!(
                        (a - t).abs() <= tolerance,
                        "member {k} (discrete {discrete}): {a} vs {t}"
                    );
                }
            }
        }
    }

    /// Frozen operands `[1, −1]` make the unit `a − b` or `a / b`, whichever its gate picks,
    /// whatever the operand heads hold.
    #[test]
    fn frozen_operands_leave_only_the_gate() {
        let device = Device::default();
        let x = Tensor::<2>::from_data([[3.0f32, 4.0], [-0.5, 8.0]], &device);
        let config = DmuConfig::new(2).with_frozen_operands(Some(vec![1.0, -1.0, 0.0]));
        for (lin, op) in [
            (true, (|a, b| a - b) as fn(f32, f32) -> f32),
            (false, |a, b| a / b),
        ] {
            let mut dmu = config.init(&device);
            let bias = if lin { [5.0f32, -5.0] } else { [-5.0, 5.0] };
            dmu.gate.weight = Param::from_tensor(Tensor::zeros([2, 2], &device));
            dmu.gate.bias = Some(Param::from_data(bias, &device));
            let y = dmu
                .discrete()
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (g, w) in y.iter().zip([op(3.0, 4.0), op(-0.5, 8.0)]) {
                assert!(((g - w) / w).abs() < 1e-5, "linear {lin}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn invalid_configs_are_refused_with_field_and_value() {
        let msg = |c: DmuConfig| c.validate().unwrap_err().to_string();
        assert_eq!(
            msg(DmuConfig::new(2).with_frozen_operands(Some(vec![1.0, 1.0]))),
            "DmuConfig.frozen_operands must hold 3 finite weights (one per node), got [1.0, 1.0]"
        );
        assert_eq!(
            msg(DmuConfig::new(0)),
            "DmuConfig.d_input must be at least 1, got 0"
        );
        assert_eq!(
            msg(DmuConfig::new(2).with_depth(0)),
            "DmuConfig.depth must be at least 1, got 0"
        );
    }

    #[test]
    #[should_panic(expected = "Dmu: input must have d_input = 2 features in its last \
                               dimension, got 3 (input shape [4, 3])")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        DmuConfig::new(2)
            .init(&device)
            .forward(Tensor::<2>::zeros([4, 3], &device));
    }
}
