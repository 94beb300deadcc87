//! The single-module arithmetic task of Mistry, Farrahi & Hare 2022 ("Exploring the Learning
//! Mechanisms of Neural Division Modules", TMLR; arXiv 2110.05177), as their code runs it.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::madsen::{EXTRAPOLATION_SEED, Uniform, VALID_SEED};
use super::protocol::{MistrySpec, Protocol, Ranges, TaskSettings};
use super::task::{BatchSampler, Operation, Subsets, Task, TaskData, TrainingData};
use burn_nalu::ConfigError;

/// The task's success criterion: test (extrapolation) MSE below this, at the step with the
/// lowest validation MSE (their division paper's `neurips_range.r`).
pub const MISTRY_THRESHOLD: f64 = 1e-5;

/// Mistry et al.'s single-module task: one module reads `a` and `b` directly (two of the
/// inputs: `x₀`, `x₁` with 2 inputs; two adjacent ones at a seeded offset among 10, the rest
/// distractors); a fresh batch of the interpolation range at every step; fixed validation
/// (interpolation) and test (extrapolation) rows, 10,000 each, shared by every seed;
/// success when the test MSE is below [`MISTRY_THRESHOLD`]. The nine ranges are
/// [`MISTRY_RANGES`](super::MISTRY_RANGES).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MistryTask {
    /// The settings.
    pub spec: MistrySpec,
}

impl MistryTask {
    /// The task with `spec`.
    ///
    /// # Errors
    /// If `spec` is invalid ([`MistrySpec::validate`]); the error names the field.
    pub fn new(spec: MistrySpec) -> Result<Self, ConfigError> {
        spec.validate()?;
        Ok(Self { spec })
    }

    /// The subsets of `seed`: `a = x[s]`, `b = x[s + 1]` at a seeded start `s`.
    pub fn subsets(&self, seed: u64) -> Subsets {
        let mut rng = StdRng::seed_from_u64(seed);
        let start = rng.random_range(0..=self.spec.inputs - 2);
        Subsets {
            a: vec![start],
            b: vec![start + 1],
        }
    }
}

impl Task for MistryTask {
    fn protocol(&self) -> Protocol {
        Protocol::Mistry
    }

    fn data(&self, op: Operation, seed: u64) -> TaskData {
        let (interpolation, extrapolation) = self.spec.ranges();
        let subsets = self.subsets(seed);
        let width = self.spec.inputs;
        let rows = |ranges: Ranges, seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let total = length(ranges);
            let mut x: Vec<f32> = (0..self.spec.eval_rows * width)
                .map(|_| place(ranges, rng.random_range(0.0..total)))
                .collect();
            no_zero_divisor(op, &subsets, &mut x, width, total);
            subsets.split(op, x, width)
        };
        let sampler = UnionBatches {
            uniform: Uniform::new(seed, (0.0, length(interpolation))),
            ranges: interpolation,
            subsets: subsets.clone(),
            width,
            op,
        };
        TaskData {
            protocol: self.protocol(),
            op,
            seed,
            train: TrainingData::Stream(Box::new(sampler)),
            valid: rows(interpolation, VALID_SEED),
            valid_threshold: MISTRY_THRESHOLD,
            extrapolation: rows(extrapolation, EXTRAPOLATION_SEED),
            success_threshold: MISTRY_THRESHOLD,
            subsets,
            step_width: width,
        }
    }

    fn settings(&self) -> TaskSettings {
        TaskSettings::Mistry(self.spec)
    }
}

/// The ε of the Primer's threshold ([`primer_threshold`]).
pub const PRIMER_EPSILON: f64 = 1e-4;

/// The success threshold of Mistry et al.'s Primer ("A Primer for Neural Arithmetic Logic
/// Modules", JMLR 2022) for `op` on the test range of [`MISTRY_RANGES`](super::MISTRY_RANGES)
/// `range` with `inputs` inputs: the test MSE of a solution `ε` = [`PRIMER_EPSILON`] away from
/// the exact one (their `generate_exp_thresholds.r`: every weight off by `ε`, so
/// `y = a ± b − ε·Σ|x|`, `(1 − ε)²·a·b·Π(1 − ε|x_j|)`, `(1 − ε)/(1 + ε)·a/b·Π(1 − ε|x_j|)` over
/// the distractors `x_j`). Their script estimates this mean from 10⁶ draws; here it is the
/// expectation itself, from the moments of the uniform test range. `None` for the operations
/// the Primer does not run (squares and roots).
pub fn primer_threshold(op: Operation, inputs: usize, range: usize) -> Option<f64> {
    let moments = Moments::of(super::MISTRY_RANGES[range].1);
    let (e, n, distractors) = (PRIMER_EPSILON, inputs as f64, inputs as i32 - 2);
    // E[(c·Π(1 − ε|x_j|) − 1)²] for a product or quotient scaled by `c`.
    let off = |c: f64| {
        let (p, p2) = (
            1.0 - e * moments.abs,
            1.0 - 2.0 * e * moments.abs + e * e * moments.sq,
        );
        c * c * p2.powi(distractors) - 2.0 * c * p.powi(distractors) + 1.0
    };
    Some(match op {
        // ε²·E[(Σ|x|)²] over all the inputs.
        Operation::Add | Operation::Sub => {
            e * e * (n * moments.sq + n * (n - 1.0) * moments.abs * moments.abs)
        }
        Operation::Mul => moments.sq * moments.sq * off((1.0 - e) * (1.0 - e)),
        Operation::Div => moments.sq * moments.inv_sq * off((1.0 - e) / (1.0 + e)),
        _ => return None,
    })
}

/// `E[x²]`, `E[|x|]` and `E[x⁻²]` of `x` uniform over the union of `ranges` (intervals of one
/// sign each, as every test range is).
struct Moments {
    sq: f64,
    abs: f64,
    inv_sq: f64,
}

impl Moments {
    fn of(ranges: Ranges) -> Self {
        let total: f64 = ranges.iter().map(|&(lo, hi)| f64::from(hi - lo)).sum();
        // Σ over the intervals of ∫ f, divided by the total length.
        let mean = |integral: fn(f64, f64) -> f64| {
            let sum: f64 = (ranges.iter())
                .map(|&(lo, hi)| integral(f64::from(lo), f64::from(hi)))
                .sum();
            sum / total
        };
        Self {
            sq: mean(|lo, hi| (hi.powi(3) - lo.powi(3)) / 3.0),
            abs: mean(|lo, hi| (hi * hi.abs() - lo * lo.abs()) / 2.0),
            inv_sq: mean(|lo, hi| 1.0 / lo - 1.0 / hi),
        }
    }
}

/// The total length of `ranges`.
fn length(ranges: Ranges) -> f32 {
    ranges.iter().map(|(lo, hi)| hi - lo).sum()
}

/// `v ∈ [0, length(ranges))` placed into `ranges` in order: a uniform `v` gives a uniform draw
/// over their union (each interval with the probability of its length; the authors draw the
/// interval by a fair coin, the same for their intervals of equal length).
fn place(ranges: Ranges, mut v: f32) -> f32 {
    for &(lo, hi) in &ranges[..ranges.len() - 1] {
        if v < hi - lo {
            return lo + v;
        }
        v -= hi - lo;
    }
    ranges[ranges.len() - 1].0 + v
}

/// For `÷`, moves a divisor input of exactly 0 half a step of the draws' lattice up (`total`,
/// the ranges' length, times 2⁻²⁴). The draws are a lattice of 2²³ points that holds 0 when a
/// range crosses it ([−2, 2]): a batch of 128 draws it once in 65,536 steps, and `a / 0` makes
/// the loss infinite (before this, 16 of 25 seeds on [−2, 2] ended at the same step in every
/// model). The authors draw f64 (numpy) and compute the target before rounding to f32: 0 comes
/// with probability 2⁻⁵³, and the targets of divisors near 0 are large but finite, as here.
/// Other operations, and ranges away from 0, keep every draw.
fn no_zero_divisor(op: Operation, subsets: &Subsets, x: &mut [f32], width: usize, total: f32) {
    if op != Operation::Div {
        return;
    }
    let half_step = total * 2f32.powi(-24);
    for row in x.chunks_exact_mut(width) {
        if subsets.b.iter().all(|&c| row[c] == 0.0) {
            row[subsets.b[0]] = half_step;
        }
    }
}

/// Fresh rows: inputs from [`Uniform`] placed into the ranges, targets `op(a, b)`.
#[derive(Clone)]
struct UnionBatches {
    uniform: Uniform,
    ranges: Ranges,
    subsets: Subsets,
    width: usize,
    op: Operation,
}

impl BatchSampler for UnionBatches {
    fn sample(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) {
        let start = x.len();
        self.uniform.append(rows * self.width, x);
        x[start..]
            .iter_mut()
            .for_each(|v| *v = place(self.ranges, *v));
        let total = length(self.ranges);
        no_zero_divisor(self.op, &self.subsets, &mut x[start..], self.width, total);
        y.extend(self.subsets.targets(self.op, &x[start..], self.width));
    }

    fn boxed_clone(&self) -> Box<dyn BatchSampler> {
        Box::new(self.clone())
    }

    fn state(&self) -> Option<Vec<u32>> {
        Some(self.uniform.state())
    }

    fn set_state(&mut self, state: &[u32]) -> Result<(), String> {
        self.uniform.set_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MISTRY_RANGES;

    /// The Primer's thresholds as their script computes them: the mean squared difference of
    /// the ε-perturbed and the exact solution over draws of the test range (one fixed seed).
    /// 400,000 draws: the squared error's spread is at most ~2.2 times its mean (`÷` on
    /// [−2, −0.2)), so the mean's relative standard error is below 0.35% and 2% over five of them. Known
    /// values by hand: `+` on U[2, 6): ε²·(2·E[x²] + 2·E[|x|]²) = 1e-8·(2·52/3 + 32).
    #[test]
    fn primer_thresholds_are_the_expected_mse_of_the_perturbed_solution() {
        let by_hand = 1e-8 * (2.0 * 52.0 / 3.0 + 32.0);
        let add = primer_threshold(Operation::Add, 2, 6).unwrap();
        assert!(
            (add - by_hand).abs() < 1e-12 * by_hand,
            "{add} vs {by_hand}"
        );
        assert_eq!(primer_threshold(Operation::Sqrt, 2, 6), None);
        let e = PRIMER_EPSILON;
        let mut rng = StdRng::seed_from_u64(5);
        for (range, &(_, test)) in MISTRY_RANGES.iter().enumerate() {
            for inputs in [2, 10] {
                for op in [
                    Operation::Add,
                    Operation::Sub,
                    Operation::Mul,
                    Operation::Div,
                ] {
                    let draws = 400_000;
                    let total: f64 = (0..draws)
                        .map(|_| {
                            let x: Vec<f64> = (0..inputs)
                                .map(|_| {
                                    let v = rng.random_range(0.0..length(test));
                                    f64::from(place(test, v))
                                })
                                .collect();
                            let rest: f64 = x[2..].iter().map(|v| 1.0 - e * v.abs()).product();
                            let sum_abs: f64 = x.iter().map(|v| v.abs()).sum();
                            let diff = match op {
                                Operation::Add | Operation::Sub => e * sum_abs,
                                Operation::Mul => x[0] * x[1] * ((1.0 - e).powi(2) * rest - 1.0),
                                _ => x[0] / x[1] * ((1.0 - e) / (1.0 + e) * rest - 1.0),
                            };
                            diff * diff
                        })
                        .sum();
                    let simulated = total / f64::from(draws);
                    let exact = primer_threshold(op, inputs, range).unwrap();
                    let rel = (exact - simulated).abs() / simulated;
                    assert!(
                        rel < 0.02,
                        "{op} range {range}, {inputs} inputs: {exact} vs {simulated}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_and_b_are_adjacent_inputs_at_a_seeded_offset() {
        let task = MistryTask::default();
        let offsets: Vec<usize> = (0..30).map(|s| task.subsets(s).a[0]).collect();
        assert!(offsets.iter().all(|&o| o <= 8));
        assert!(offsets.iter().any(|&o| o != offsets[0]), "{offsets:?}");
        let s = task.subsets(3);
        assert_eq!(s.b, [s.a[0] + 1]);
        let two = MistryTask::new(MistrySpec {
            inputs: 2,
            ..MistrySpec::default()
        })
        .unwrap();
        assert_eq!(
            two.subsets(7),
            Subsets {
                a: vec![0],
                b: vec![1]
            }
        );
    }

    /// Every range's rows fall inside it, targets are `a / b` of the seed's inputs, and a union
    /// of two intervals is drawn from both.
    #[test]
    fn rows_come_from_their_ranges() {
        for (range, &(interpolation, extrapolation)) in MISTRY_RANGES.iter().enumerate() {
            let spec = MistrySpec {
                range,
                eval_rows: 500,
                ..MistrySpec::default()
            };
            let mut data = MistryTask::new(spec).unwrap().data(Operation::Div, 1);
            let inside = |ranges: Ranges, v: f32| ranges.iter().any(|&(lo, hi)| lo <= v && v < hi);
            let TrainingData::Stream(sampler) = &mut data.train else {
                panic!("fresh batches")
            };
            let (mut x, mut y) = (Vec::new(), Vec::new());
            sampler.sample(128, &mut x, &mut y);
            assert!(x.iter().all(|&v| inside(interpolation, v)), "range {range}");
            assert!(data.valid.x.iter().all(|&v| inside(interpolation, v)));
            assert!(
                data.extrapolation
                    .x
                    .iter()
                    .all(|&v| inside(extrapolation, v))
            );
            let (a, b) = (data.subsets.a[0], data.subsets.b[0]);
            assert_eq!(y[0], (x[a] as f64 / x[b] as f64) as f32);
            if extrapolation.len() == 2 {
                let negative = data.extrapolation.x.iter().filter(|&&v| v < 0.0).count();
                let share = negative as f64 / data.extrapolation.x.len() as f64;
                // 5000 draws: the share's standard deviation is 0.007.
                assert!((share - 0.5).abs() < 0.05, "{share}");
            }
        }
    }

    /// On [−2, 2] the lattice of draws holds 0: seed 0's first 700 batches of 10 inputs draw
    /// it as the divisor (where the loss of every model went infinite at step 672). For `÷` that
    /// draw moves half a step, 2⁻²², and every target is finite; `+` keeps it, and every other
    /// draw is the same for both.
    #[test]
    fn a_divisor_is_never_zero() {
        let spec = MistrySpec {
            range: 4,
            eval_rows: 100,
            ..MistrySpec::default()
        };
        let task = MistryTask::new(spec).unwrap();
        let batches = |op| {
            let mut data = task.data(op, 0);
            let TrainingData::Stream(sampler) = &mut data.train else {
                panic!("fresh batches")
            };
            let (mut x, mut y) = (Vec::new(), Vec::new());
            (0..700).for_each(|_| sampler.sample(128, &mut x, &mut y));
            (x, y)
        };
        let ((x_div, y_div), (x_add, _)) = (batches(Operation::Div), batches(Operation::Add));
        assert!(y_div.iter().all(|y| y.is_finite()));
        let b = task.subsets(0).b[0];
        let mut moved = 0;
        for (i, (&d, &a)) in x_div.iter().zip(&x_add).enumerate() {
            if d != a {
                assert_eq!((i % spec.inputs, a, d), (b, 0.0, 2f32.powi(-22)));
                moved += 1;
            }
        }
        assert!(moved > 0, "no zero divisor drawn: the test proves nothing");
    }

    #[test]
    fn invalid_specs_are_refused_by_field() {
        let bad = MistrySpec {
            range: 9,
            ..MistrySpec::default()
        };
        assert_eq!(
            MistryTask::new(bad).unwrap_err().to_string(),
            "MistrySpec.range must be below 9, got 9"
        );
    }
}
