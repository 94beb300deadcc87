//! Levenberg–Marquardt on a trained model's training rows: the last digits that Adam leaves.
//!
//! Adam settles a unit's weights to within the noise of its steps; Madsen & Johansen's ÷ and √
//! thresholds need them within about 1e-6 of the exact solution, in directions along which the
//! training loss is nearly flat (a quotient of sums barely changes when both sums take on a
//! little of every input). A second-order method sees that curvature: each iteration solves
//! `(JᵀJ + μ·D) δ = −Jᵀr` for the step `δ` of every parameter, with `r` the residuals of the
//! model on the rows, `J` their Jacobian, `D` the diagonal of `JᵀJ` (Marquardt's scaling) and
//! `μ` raised until the step lowers the squared error. The units' clamps apply after each step,
//! and a parameter they move is held on its bound while the others' step is solved again (an
//! active set), so a weight can rest on its bound. It reads only the rows it is given.
//!
//! The Jacobian comes from one backward pass through a [`Population`] of one member per row:
//! each member sees one row, so the gradient of the summed outputs with respect to member `k`'s
//! parameters is row `k` of `J`. The normal equations are formed and solved in f64 on the host.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::Rows;
use crate::ArithmeticUnit;
use crate::Population;
use crate::ops::replace_value;
use crate::population::{values, with_values};

/// What [`polish`] did to one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Polish {
    /// Iterations whose step was accepted.
    pub iterations: usize,
    /// The MSE on the polishing rows before.
    pub mse_before: f64,
    /// The MSE on the polishing rows after.
    pub mse_after: f64,
}

/// Iterations the recipes' polish may take: enough for Levenberg–Marquardt to converge on the
/// stacks they serve (a few dozen parameters), which it does in far fewer near a solution.
pub const POLISH_ITERATIONS: usize = 100;

/// Largest damping tried before an iteration gives up: a step this damped is a tiny gradient
/// step, and no longer lowering the error means the model sits at a minimum (or on its bounds).
const MAX_DAMPING: f64 = 1e8;

/// `model` after at most `iterations` Levenberg–Marquardt steps on the squared error over
/// `rows`, computed in f64 and returned in the model's own float type, and what they did.
/// Stops early once a step no longer lowers the error by a part in 10⁶ (near an exact
/// solution, what is left is the f32 targets' rounding).
pub fn polish<M: ArithmeticUnit>(
    model: M,
    rows: &Rows,
    device: &Device,
    iterations: usize,
) -> (M, Polish) {
    let dtype = values(&model)[0].dtype();
    let model = cast(model, DType::F64);
    let x = inputs(rows, [rows.rows(), rows.width], device);
    let sse = |m: &M| {
        let out = host(m.forward_members(x.clone(), 1).reshape([-1]));
        squared_error(&out, &rows.y)
    };
    let mut model = model;
    let mut theta = parameters(&model);
    let mut error = sse(&model);
    let mse_before = error / rows.y.len() as f64;
    let mut mu = 1e-3;
    let mut accepted = 0;
    for _ in 0..iterations {
        let (out, jac) = jacobian(&model, rows, device);
        let residual: Vec<f64> = out
            .iter()
            .zip(&rows.y)
            .map(|(o, &y)| o - y as f64)
            .collect();
        let (a, g) = normal_equations(&jac, &residual, theta.len());
        let mut improved = None;
        while mu <= MAX_DAMPING {
            let trial = projected_step(&model, &theta, &a, &g, mu, device);
            match trial.map(|m| (sse(&m), m)) {
                Some((e, m)) if e < error => {
                    improved = Some((e, m));
                    mu = (mu / 3.0).max(1e-12);
                    break;
                }
                _ => mu *= 4.0,
            }
        }
        let Some((e, m)) = improved else { break };
        let gain = (error - e) / error;
        (model, error, accepted) = (m, e, accepted + 1);
        theta = parameters(&model);
        if gain < 1e-6 {
            break;
        }
    }
    let model = cast(model, dtype);
    let report = Polish {
        iterations: accepted,
        mse_before,
        mse_after: error / rows.y.len() as f64,
    };
    (model, report)
}

/// The model's outputs on `rows` (row-major, `[rows · outputs]`) and their Jacobian with respect
/// to its parameters (row-major, `[rows · outputs, parameters]`, in [`parameters`]' order).
fn jacobian<M: ArithmeticUnit>(model: &M, rows: &Rows, device: &Device) -> (Vec<f64>, Vec<f64>) {
    let (n, outputs) = (rows.rows(), rows.outputs);
    let ad = device.clone().autodiff();
    let one = model.clone().to_device(&ad).train();
    let population = Population::repeated(one, n);
    let x = inputs(rows, [n, 1, rows.width], &ad);
    let p: usize = values(model).iter().map(|v| v.dims()[0]).sum();
    let mut jac = vec![0.0; n * outputs * p];
    let mut out = vec![0.0; n * outputs];
    for o in 0..outputs {
        let y = population.forward(x.clone()).narrow(2, o, 1);
        for (k, v) in host(y.clone().detach().reshape([-1]))
            .into_iter()
            .enumerate()
        {
            out[k * outputs + o] = v;
        }
        let grads = GradientsParams::from_grads(y.sum().backward(), &population);
        let mut column = 0;
        for g in member_gradients(&population, grads) {
            let size = g.len() / n;
            for (k, block) in g.chunks_exact(size).enumerate() {
                let row = (k * outputs + o) * p + column;
                jac[row..row + size].copy_from_slice(block);
            }
            column += size;
        }
    }
    (out, jac)
}

/// The rows' inputs in f64, shaped `shape`.
fn inputs<const D: usize>(rows: &Rows, shape: [usize; D], device: &Device) -> Tensor<D> {
    let x = TensorData::new(rows.x.iter().map(|&v| v as f64).collect(), shape);
    Tensor::from_data(x, (device, DType::F64))
}

/// Every parameter's gradient (zeros where it has none), flattened, in visiting order.
fn member_gradients<U: Module>(population: &U, mut grads: GradientsParams) -> Vec<Vec<f64>> {
    struct Collect<'a> {
        grads: &'a mut GradientsParams,
        out: Vec<Vec<f64>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.shape().num_elements();
            self.out.push(match self.grads.remove::<D>(param.id) {
                Some(g) => host(g.reshape([n])),
                None => vec![0.0; n],
            });
        }
    }
    let mut collect = Collect {
        grads: &mut grads,
        out: Vec::new(),
    };
    population.visit(&mut collect);
    collect.out
}

/// `(JᵀJ, Jᵀr)`, `J` being `[rows, p]` row-major: the upper triangle summed, then mirrored.
fn normal_equations(jac: &[f64], residual: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; p * p];
    let mut g = vec![0.0; p];
    for (row, &r) in jac.chunks_exact(p).zip(residual) {
        for (i, &ji) in row.iter().enumerate() {
            if ji == 0.0 {
                continue;
            }
            g[i] += ji * r;
            for (aij, &jj) in a[i * p + i..(i + 1) * p].iter_mut().zip(&row[i..]) {
                *aij += ji * jj;
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            a[i * p + j] = a[j * p + i];
        }
    }
    (a, g)
}

/// The model moved by the damped step and clamped. A parameter the clamp moves (a weight
/// pushed past its bound) is set on its bound and held there, and the step is solved again for
/// the others, up to [`ACTIVE_SET_ROUNDS`] times: clamping a full step instead would undo the
/// other parameters' share of it, and a solution on a bound (a NAU weight of 1) would stall.
fn projected_step<M: ArithmeticUnit>(
    model: &M,
    theta: &[f64],
    a: &[f64],
    g: &[f64],
    mu: f64,
    device: &Device,
) -> Option<M> {
    let p = theta.len();
    let mut held = vec![false; p];
    let mut base = theta.to_vec();
    let mut trial = None;
    for _ in 0..ACTIVE_SET_ROUNDS {
        // The gradient at the shifted base, to first order: g + A·(base − θ).
        let shift: Vec<f64> = base.iter().zip(theta).map(|(b, t)| b - t).collect();
        let g_base: Vec<f64> = (0..p)
            .map(|i| g[i] + (0..p).map(|j| a[i * p + j] * shift[j]).sum::<f64>())
            .collect();
        let delta = step(a, &g_base, mu, &held)?;
        let moved: Vec<f64> = base.iter().zip(&delta).map(|(t, d)| t + d).collect();
        let clamped = with_parameters(model.clone(), &moved, device).clamp_members();
        let mut more = false;
        for (i, c) in parameters(&clamped).into_iter().enumerate() {
            if !held[i] && (c - moved[i]).abs() > 1e-12 * moved[i].abs().max(1.0) {
                (held[i], base[i], more) = (true, c, true);
            }
        }
        trial = Some(clamped);
        if !more {
            break;
        }
    }
    trial
}

/// Rounds of [`projected_step`]: each holds the parameters the last one pushed past a bound.
const ACTIVE_SET_ROUNDS: usize = 4;

/// The step `δ` solving `(A + μ·D) δ = −g` over the parameters not `held` (whose `δ` is 0;
/// `D` the diagonal of `A`, floored so that a parameter no row moves still has a damped, finite
/// step), or `None` if the system is not positive definite in floating point.
fn step(a: &[f64], g: &[f64], mu: f64, held: &[bool]) -> Option<Vec<f64>> {
    let p = g.len();
    let largest = (0..p).map(|i| a[i * p + i]).fold(0.0, f64::max);
    let floor = largest * 1e-12 + f64::MIN_POSITIVE;
    let mut m = a.to_vec();
    let mut rhs: Vec<f64> = g.iter().map(|v| -v).collect();
    for i in 0..p {
        m[i * p + i] += mu * a[i * p + i].max(floor);
        if held[i] {
            (0..p).for_each(|j| (m[i * p + j], m[j * p + i]) = (0.0, 0.0));
            (m[i * p + i], rhs[i]) = (1.0, 0.0);
        }
    }
    cholesky_solve(m, rhs)
}

/// Solves `M x = b` for a symmetric positive definite `M` (`p × p`, row-major) by Cholesky.
fn cholesky_solve(mut m: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let p = b.len();
    for j in 0..p {
        let d = m[j * p + j] - (0..j).map(|k| m[j * p + k].powi(2)).sum::<f64>();
        // Not positive, or NaN: not positive definite in floating point.
        if d.is_nan() || d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        m[j * p + j] = d;
        for i in j + 1..p {
            let s: f64 = (0..j).map(|k| m[i * p + k] * m[j * p + k]).sum();
            m[i * p + j] = (m[i * p + j] - s) / d;
        }
    }
    for i in 0..p {
        let s: f64 = (0..i).map(|k| m[i * p + k] * b[k]).sum();
        b[i] = (b[i] - s) / m[i * p + i];
    }
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| m[k * p + i] * b[k]).sum();
        b[i] = (b[i] - s) / m[i * p + i];
    }
    Some(b)
}

/// The model with every parameter cast to `dtype`.
fn cast<M: Module>(model: M, dtype: DType) -> M {
    struct Cast(DType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            replace_value(param, |t| t.cast(dtype))
        }
    }
    model.map(&mut Cast(dtype))
}

/// The model's parameters, flattened in visiting order, in f64.
fn parameters<M: Module>(model: &M) -> Vec<f64> {
    values(model).into_iter().flat_map(host).collect()
}

/// The model with its parameters set from `theta` ([`parameters`]' order).
fn with_parameters<M: Module>(model: M, theta: &[f64], device: &Device) -> M {
    let mut rest = theta;
    let parts = values(&model)
        .iter()
        .map(|v| {
            let (head, tail) = rest.split_at(v.dims()[0]);
            rest = tail;
            // Made in the parameter's own type: through the device's default (f32) it would
            // lose the f64 step's last digits.
            Tensor::<1>::from_data(
                TensorData::new(head.to_vec(), [head.len()]),
                (device, v.dtype()),
            )
        })
        .collect();
    with_values(model, parts)
}

fn host(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float values")
}

fn squared_error(out: &[f64], y: &[f32]) -> f64 {
    out.iter()
        .zip(y)
        .map(|(o, &y)| (o - y as f64).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nau, NauConfig, NmuConfig, RealNpuConfig, Stack};
    use burn::module::Param;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// `rows` rows of `width` inputs uniform in `[lo, hi)`, and `f` of each.
    fn rows(rows: usize, width: usize, (lo, hi): (f32, f32), f: impl Fn(&[f32]) -> f64) -> Rows {
        let mut rng = StdRng::seed_from_u64(7);
        let x: Vec<f32> = (0..rows * width)
            .map(|_| rng.random_range(lo..hi))
            .collect();
        let y = x.chunks(width).map(|r| f(r) as f32).collect();
        Rows {
            x,
            y,
            width,
            outputs: 1,
        }
    }

    fn weights<M: Module>(model: &M) -> Vec<f64> {
        parameters(model)
    }

    /// A linear unit is a linear least-squares problem: one Gauss–Newton step solves it, and
    /// the polished weights are the exact ones to f32 rounding (they are integers, which f32
    /// holds exactly; the f64 solve leaves errors near 1e-15, far below half an ulp).
    #[test]
    fn a_linear_unit_is_solved_exactly() {
        let device = Device::default();
        let data = rows(64, 3, (1.0, 2.0), |r| (r[0] + r[1] - r[2]) as f64);
        let mut nau = NauConfig::new(3, 1).init(&device);
        nau.weight = Param::from_data([[0.8f32], [1.1], [-0.7]], &device);
        let (nau, report): (Nau, _) = polish(nau, &data, &device, 10);
        assert_eq!(weights(&nau), [1.0, 1.0, -1.0]);
        assert!(report.mse_before > 1e-2, "{report:?}");
        // Outputs near 2 in f32 round to 1.2e-7: an MSE of at most about 1.4e-14.
        assert!(report.mse_after < 1e-13, "{report:?}");
    }

    /// `√(x0 + x1)` through `Nau → RealNpu` with open gates, started off the solution by a few
    /// percent in every weight. The solutions form a family (both sums may take `x0 + x1`, their
    /// powers adding to ½), so the test reads what every member shares: each input's power
    /// through the stack, `Σ_h W[i, h]·w_re[h]`, is ½ for `x0` and `x1` and 0 for the others,
    /// to 1e-5 (a power off by 1e-5 errs by about 1e-5·ln(x0 + x1)·√(x0 + x1), an extrapolation
    /// MSE near 1e-9). The polish, in f64, gets there where Adam in f32 stalls, and the
    /// extrapolation to `[2, 6)` then errs by little more than f32 rounding.
    #[test]
    fn a_root_of_a_sum_is_polished_to_its_exact_powers() {
        let device = Device::default();
        let f = |r: &[f32]| (r[0] as f64 + r[1] as f64).sqrt();
        let train = rows(256, 4, (1.0, 2.0), f);
        let test = rows(256, 4, (2.0, 6.0), f);
        let mut stack = Stack::new(
            NauConfig::new(4, 2).init(&device),
            RealNpuConfig::naive(2, 1).init(&device),
        );
        let w = [[0.97f32, 0.02], [1.0, -0.03], [0.04, 0.98], [-0.02, 0.01]];
        stack.hidden.weight = Param::from_data(w, &device);
        stack.output.w_re = Param::from_data([[0.47f32], [0.03]], &device);
        let model = stack;
        let before = split_mse(&model, &test);
        let (model, report) = polish(model, &train, &device, 50);
        let after = split_mse(&model, &test);
        let w = weights(&model);
        let (hidden, powers) = (&w[..8], &w[8..10]);
        for (i, want) in [0.5, 0.5, 0.0, 0.0].into_iter().enumerate() {
            let power = hidden[2 * i] * powers[0] + hidden[2 * i + 1] * powers[1];
            assert!(
                (power - want).abs() < 1e-5,
                "input {i}: {power}; {w:?}, {report:?}"
            );
        }
        // Outputs near 2.4 round to 1.2e-7 in f32 (an MSE near 1e-15); the powers' last
        // digits add at most about 1e-13.
        assert!(after < 1e-12 && before > 1e-4, "{before} → {after}");
        // The open gates are not parameters that move.
        assert_eq!(&w[10..], [1.0, 1.0]);
    }

    /// The Jacobian of one backward pass through a population of one member per row matches
    /// central differences of the outputs for every trained parameter, in f64: with a step of
    /// 1e-6, truncation errs by about 1e-12 and rounding by about 1e-16/1e-6 = 1e-10 of the
    /// outputs' scale, which a random power unit's initial weights can make large: the
    /// tolerance is 1e-6 relative to the entry (at least 1).
    #[test]
    fn the_jacobian_matches_finite_differences() {
        let device = Device::default();
        let data = rows(5, 3, (1.0, 2.0), |r| r[0] as f64);
        jacobian_matches(&device, &data, "NAU → NAU", 0, || {
            Stack::new(
                NauConfig::new(3, 2).init(&device),
                NauConfig::new(2, 1).init(&device),
            )
        });
        // The naive NPU's gates (its last two parameters) are held: no gradient.
        jacobian_matches(&device, &data, "NAU → naive NPU", 2, || {
            Stack::new(
                NauConfig::new(3, 2).init(&device),
                RealNpuConfig::naive(2, 1).init(&device),
            )
        });
        jacobian_matches(&device, &data, "NAU → NMU", 0, || {
            Stack::new(
                NauConfig::new(3, 2).init(&device),
                NmuConfig::new(2, 1).init(&device),
            )
        });
    }

    /// [`the_jacobian_matches_finite_differences`] for one model, its last `held` parameters
    /// without a gradient.
    fn jacobian_matches<M: ArithmeticUnit>(
        device: &Device,
        data: &Rows,
        kind: &str,
        held: usize,
        init: impl FnOnce() -> M,
    ) {
        let device = device.clone();
        {
            let model = crate::population::with_seed(&device, 1, || {
                let model = init();
                values(&model); // draws the lazily initialised parameters under the seed
                model
            });
            let model = cast(model, DType::F64);
            let (out, jac) = jacobian(&model, data, &device);
            let theta = parameters(&model);
            let p = theta.len();
            let x = TensorData::new(data.x.iter().map(|&v| v as f64).collect(), [5, 3]);
            let x = Tensor::<2>::from_data(x, (&device, DType::F64));
            let outputs = |t: &[f64]| {
                let m = with_parameters(model.clone(), t, &device);
                host(m.forward_members(x.clone(), 1).reshape([-1]))
            };
            assert_eq!(out, outputs(&theta));
            for k in 0..p {
                let h = 1e-6;
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[k] += h;
                down[k] -= h;
                let (yu, yd) = (outputs(&up), outputs(&down));
                let held = k >= p - held;
                for r in 0..5 {
                    let fd = (yu[r] - yd[r]) / (2.0 * h);
                    let got = jac[r * p + k];
                    if held {
                        assert_eq!(got, 0.0);
                        continue;
                    }
                    assert!(
                        (fd - got).abs() < 1e-6 * fd.abs().max(1.0),
                        "{kind} row {r} parameter {k}: {got} vs {fd}"
                    );
                }
            }
        }
    }

    fn split_mse<M: ArithmeticUnit>(model: &M, split: &Rows) -> f64 {
        split.mse(model, &Device::default())
    }

    /// A model that is already exact is left as it is (no step lowers a zero error).
    #[test]
    fn exact_weights_stay() {
        let device = Device::default();
        let data = rows(32, 2, (1.0, 2.0), |r| (r[0] as f64 * r[1] as f64).sqrt());
        let mut npu = RealNpuConfig::naive(2, 1).init(&device);
        npu.w_re = Param::from_data([[0.5f32], [0.5]], &device);
        let before = weights(&npu);
        let (npu, _) = polish(npu, &data, &device, 5);
        for (a, b) in weights(&npu).iter().zip(&before) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
