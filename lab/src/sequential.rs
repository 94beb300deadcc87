//! Madsen & Johansen 2020's sequential arithmetic (`stable-nalu`'s `sequential_mnist.py` with
//! the `cumsum` and `cumprod` operations), with each digit given as its number instead of an
//! MNIST image: the model keeps a running sum or product and is scored on every step.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::madsen::{EXTRAPOLATION_SEED, MADSEN_EPSILON, Uniform, VALID_SEED};
use super::protocol::{Protocol, SequentialSpec, TaskSettings};
use super::task::{BatchSampler, Operation, Split, Subsets, Task, TaskData, TrainingData};
use burn_nalu::ConfigError;

/// The sequential task: a row is a sequence of digits, one per step, and its targets are the
/// running sums (`add`: digits 0 to 9, 10 steps, extrapolation to 1,000) or running products
/// (`mul`: digits 1 to 9, 2 steps, extrapolation to 20) after every step: the loss and the
/// evaluation read every step, as theirs. A fresh batch of sequences at every step; the
/// validation sequences as long as the training ones, the extrapolation sequences longer.
///
/// Success: the extrapolation MSE (over every step) below that of the accumulator's true
/// weights each moved by [`MADSEN_EPSILON`] (`h_t = (1−ε)·x_t + (1−ε)·h_{t−1}`, or the NMU
/// product `((1−ε)·x_t + ε)·((1−ε)·h_{t−1} + ε)`). Theirs is an empirical threshold from
/// the MNIST classifier's error, which numbers do not have.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SequentialTask {
    /// The settings.
    pub spec: SequentialSpec,
}

impl SequentialTask {
    /// The operations the task has: running sums and running products.
    pub const OPERATIONS: [Operation; 2] = [Operation::Add, Operation::Mul];

    /// The task with `spec`.
    ///
    /// # Errors
    /// If `spec` is invalid ([`SequentialSpec::validate`]); the error names the field.
    pub fn new(spec: SequentialSpec) -> Result<Self, ConfigError> {
        spec.validate()?;
        Ok(Self { spec })
    }
}

/// Sequences of `time` digits from `digits` (inclusive), drawn from `rng`.
fn digit_rows(digits: (u8, u8), time: usize, rows: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..rows * time)
        .map(|_| rng.random_range(digits.0..=digits.1) as f32)
        .collect()
}

/// The split of the sequences `x` (rows of `time` digits): their running `op` after each step.
fn sequences(op: Operation, x: Vec<f32>, time: usize) -> Split {
    let y = x
        .chunks(time)
        .flat_map(|row| running(op, 1.0, row))
        .map(|v| v as f32)
        .collect();
    Split {
        x,
        y,
        width: time,
        outputs: time,
    }
}

/// The running sums (`add`) or products (`mul`) of `row` in f64, each input and state
/// weighted by `w` (1: the exact targets), products in the NMU's form `(w·z + 1 − w)`.
fn running(op: Operation, w: f64, row: &[f32]) -> Vec<f64> {
    let mut h = if op == Operation::Mul { 1.0 } else { 0.0 };
    row.iter()
        .map(|&x| {
            let x = x as f64;
            h = match op {
                Operation::Mul => (w * x + 1.0 - w) * (w * h + 1.0 - w),
                _ => w * x + w * h,
            };
            h
        })
        .collect()
}

/// The MSE over every step of the true accumulator with its weights moved by `epsilon`.
fn perturbed_mse(op: Operation, split: &Split, epsilon: f64) -> f64 {
    let total: f64 = split
        .x
        .chunks(split.width)
        .flat_map(|row| {
            let exact = running(op, 1.0, row);
            let moved = running(op, 1.0 - epsilon, row);
            exact.into_iter().zip(moved).map(|(e, m)| (m - e).powi(2))
        })
        .sum();
    total / split.y.len() as f64
}

/// Fresh training sequences: digits `⌊u⌋` for `u` uniform in `[lo, hi + 1)`, from the
/// seeded generator of the Madsen task's batches.
#[derive(Clone)]
struct DigitBatches {
    uniform: Uniform,
    op: Operation,
    time: usize,
}

impl BatchSampler for DigitBatches {
    fn sample(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) {
        let mut digits = Vec::with_capacity(rows * self.time);
        self.uniform.append(rows * self.time, &mut digits);
        digits.iter_mut().for_each(|d| *d = d.floor());
        let split = sequences(self.op, digits, self.time);
        x.extend(split.x);
        y.extend(split.y);
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

impl Task for SequentialTask {
    fn protocol(&self) -> Protocol {
        Protocol::Sequential
    }

    /// # Panics
    /// If `op` is not one of [`SequentialTask::OPERATIONS`] (the training loop refuses those
    /// first: [`TrainConfig::validate_for`](super::TrainConfig::validate_for)).
    fn data(&self, op: Operation, seed: u64) -> TaskData {
        assert!(
            Self::OPERATIONS.contains(&op),
            "the sequential task has running sums (add) and products (mul), not {op}"
        );
        let spec = &self.spec;
        let digits = SequentialSpec::digits(op);
        let (time, extrapolation_time) = spec.lengths(op);
        let split = |time: usize, seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let split = sequences(op, digit_rows(digits, time, spec.eval_rows, &mut rng), time);
            let threshold = perturbed_mse(op, &split, MADSEN_EPSILON);
            (split, threshold)
        };
        let (valid, valid_threshold) = split(time, VALID_SEED);
        let (extrapolation, success_threshold) = split(extrapolation_time, EXTRAPOLATION_SEED);
        let sampler = DigitBatches {
            uniform: Uniform::new(seed, (digits.0 as f32, digits.1 as f32 + 1.0)),
            op,
            time,
        };
        TaskData {
            protocol: self.protocol(),
            op,
            seed,
            train: TrainingData::Stream(Box::new(sampler)),
            valid,
            valid_threshold,
            extrapolation,
            success_threshold,
            subsets: Subsets {
                a: vec![0],
                b: vec![],
            },
            step_width: 1,
        }
    }

    fn settings(&self) -> TaskSettings {
        TaskSettings::Sequential(self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step's target is the running sum (from 0) or product (from 1) of the digits so
    /// far, computed in f64 (exact up to 2^53, so for every sum and for products of up to 16
    /// digits) and rounded once to f32.
    #[test]
    fn targets_are_running_sums_and_products() {
        let task = SequentialTask::default();
        for op in SequentialTask::OPERATIONS {
            let data = task.data(op, 3);
            let (time, extrapolation_time) = task.spec.lengths(op);
            assert_eq!((data.valid.width, data.valid.outputs), (time, time));
            assert_eq!(data.extrapolation.width, extrapolation_time);
            let (lo, hi) = SequentialSpec::digits(op);
            for split in [&data.valid, &data.extrapolation] {
                assert!(split.x.iter().all(|&d| d >= lo as f32 && d <= hi as f32));
                for (x, y) in split
                    .x
                    .chunks(split.width)
                    .zip(split.y.chunks(split.width))
                    .take(5)
                {
                    let mut h = if op == Operation::Mul { 1.0f64 } else { 0.0 };
                    for (&d, &t) in x.iter().zip(y) {
                        let d = d as f64;
                        h = if op == Operation::Mul { h * d } else { h + d };
                        assert_eq!(t, h as f32, "{op}: {x:?} → {y:?}");
                    }
                }
            }
            // A training batch is one more set of such sequences.
            let TrainingData::Stream(mut sampler) = data.train else {
                panic!("fresh batches");
            };
            let (mut x, mut y) = (Vec::new(), Vec::new());
            sampler.sample(1000, &mut x, &mut y);
            assert_eq!((x.len(), y.len()), (1000 * time, 1000 * time));
            for d in lo..=hi {
                assert!(x.contains(&(d as f32)), "{op}: digit {d} is drawn");
            }
            assert!(
                x.iter()
                    .all(|&d| d.fract() == 0.0 && d >= lo as f32 && d <= hi as f32)
            );
            assert_eq!(y, sequences(op, x, time).y);
        }
    }

    /// The threshold grows with the sequence: ε·t·mean(x) off at step t of a sum, so the MSE
    /// over 1,000 steps is far above that over 10; it is positive, and the exact weights are 0.
    #[test]
    fn threshold_is_that_of_weights_moved_by_epsilon() {
        let task = SequentialTask::default();
        let data = task.data(Operation::Add, 0);
        assert!(data.valid_threshold > 0.0);
        assert!(data.success_threshold > 1e4 * data.valid_threshold);
        assert_eq!(perturbed_mse(Operation::Add, &data.valid, 0.0), 0.0);
        // One sequence by hand: (1 − ε)·(2 + (1 − ε)·0) = 2 − 2ε, then (1 − ε)(3 + 2 − 2ε).
        let split = Split {
            x: vec![2.0, 3.0],
            y: vec![2.0, 5.0],
            width: 2,
            outputs: 2,
        };
        let e: f64 = 1e-3;
        let expected = ((2.0 * e).powi(2) + (5.0 - (1.0 - e) * (5.0 - 2.0 * e)).powi(2)) / 2.0;
        assert!((perturbed_mse(Operation::Add, &split, e) - expected).abs() < 1e-15);
    }

    #[test]
    fn invalid_specs_are_refused_by_field() {
        let spec = SequentialSpec {
            time: Some(0),
            ..SequentialSpec::default()
        };
        assert_eq!(
            SequentialTask::new(spec).unwrap_err().to_string(),
            "SequentialSpec.time must be at least 1, got 0"
        );
    }
}
