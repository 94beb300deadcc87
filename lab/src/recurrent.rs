//! The recurrent half of Trask et al. 2018's simple function task (Table 1), as Madsen &
//! Johansen's `stable-nalu` runs it (`dataset/simple_function_recurrent.py`): the inputs arrive
//! one step at a time, and `a` and `b` sum their subsets over every step.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::madsen::{EXTRAPOLATION_SEED, Uniform, UniformBatches, VALID_SEED, overlapping_subsets};
use super::protocol::{Protocol, RecurrentSpec, TaskSettings};
use super::reference::REFERENCE_EPSILON;
use super::task::{Operation, Split, Subsets, Task, TaskData, TrainingData};
use burn_nalu::ConfigError;

/// The recurrent task: a row is a sequence of `time` steps of `features` inputs; `a` and `b` are
/// the sums, over every step, of two contiguous subsets of the features that overlap (2 of 10
/// sharing 1, at a seeded offset); the target is `op(a, b)` at the end of the sequence. A fresh
/// batch of sequences from the interpolation range at every step; validation sequences of the
/// training length and range; extrapolation sequences longer (`extrapolation_time` steps) and
/// of larger inputs; success as for the reference task, the extrapolation MSE below that of
/// the sums' weights each moved by [`REFERENCE_EPSILON`] (on every step's inputs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecurrentTask {
    /// The settings.
    pub spec: RecurrentSpec,
}

impl RecurrentTask {
    /// The task with `spec`.
    ///
    /// # Errors
    /// If `spec` is invalid ([`RecurrentSpec::validate`]); the error names the field.
    pub fn new(spec: RecurrentSpec) -> Result<Self, ConfigError> {
        spec.validate()?;
        Ok(Self { spec })
    }

    /// The feature subsets of `seed` (one step's): `a = x[s..s+n]`, `b = x[s+n−o..s+2n−o]`.
    pub fn subsets(&self, seed: u64) -> Subsets {
        overlapping_subsets(seed, self.spec.features, self.spec.sizes())
    }
}

/// `subsets` of one step's features, repeated over `time` steps of `features` inputs.
fn over_time(subsets: &Subsets, features: usize, time: usize) -> Subsets {
    let repeat = |cols: &[usize]| -> Vec<usize> {
        (0..time)
            .flat_map(|t| cols.iter().map(move |&c| t * features + c))
            .collect()
    };
    Subsets {
        a: repeat(&subsets.a),
        b: repeat(&subsets.b),
    }
}

impl Task for RecurrentTask {
    fn protocol(&self) -> Protocol {
        Protocol::Recurrent
    }

    fn data(&self, op: Operation, seed: u64) -> TaskData {
        let spec = &self.spec;
        let subsets = self.subsets(seed);
        // Each split's sums and its threshold, over its own number of steps.
        let split = |range: (f32, f32), time: usize, seed: u64| -> (Split, f64) {
            let width = time * spec.features;
            let mut rng = StdRng::seed_from_u64(seed);
            let x = (0..spec.eval_rows * width)
                .map(|_| rng.random_range(range.0..range.1))
                .collect();
            let flat = over_time(&subsets, spec.features, time);
            let split = flat.split(op, x, width);
            let threshold = flat.perturbed_mse(op, &split, REFERENCE_EPSILON);
            (split, threshold)
        };
        let (valid, valid_threshold) = split(spec.interpolation, spec.time, VALID_SEED);
        let (extrapolation, success_threshold) = split(
            spec.extrapolation,
            spec.extrapolation_time,
            EXTRAPOLATION_SEED,
        );
        let sampler = UniformBatches {
            uniform: Uniform::new(seed, spec.interpolation),
            subsets: over_time(&subsets, spec.features, spec.time),
            width: spec.time * spec.features,
            op,
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
            subsets,
            step_width: spec.features,
        }
    }

    fn settings(&self) -> TaskSettings {
        TaskSettings::Recurrent(self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets sum each subset over every step; the extrapolation sequences are longer and
    /// their inputs larger; the threshold is that of the sums' weights moved by ε.
    #[test]
    fn sums_run_over_every_step() {
        let task = RecurrentTask::new(RecurrentSpec {
            eval_rows: 50,
            ..RecurrentSpec::default()
        })
        .unwrap();
        let data = task.data(Operation::Add, 3);
        let s = &data.subsets;
        assert_eq!(
            (s.a.len(), s.b.len(), s.b[0]),
            (2, 2, s.a[1]),
            "2 of 10, sharing 1"
        );
        assert_eq!((data.valid.width, data.extrapolation.width), (100, 1000));
        assert_eq!(data.step_width, 10);
        for (row, &y) in data.valid.x.chunks(100).zip(&data.valid.y) {
            let sum = |cols: &[usize]| -> f64 {
                row.chunks(10)
                    .map(|step| cols.iter().map(|&c| step[c] as f64).sum::<f64>())
                    .sum()
            };
            assert_eq!(y, (sum(&s.a) + sum(&s.b)) as f32);
        }
        assert!(data.extrapolation.x.iter().all(|v| (0.0..2.0).contains(v)));
        assert!(data.extrapolation.x.iter().any(|&v| v >= 1.0));
        // Every weight moved by ε: a' − a = ε·(S − 2a) with S the sum of all inputs.
        let eps = REFERENCE_EPSILON;
        let x = &data.extrapolation;
        let moved: f64 = (x.x.chunks(1000))
            .map(|row| {
                let all: f64 = row.iter().map(|&v| v as f64).sum();
                let sum = |cols: &[usize]| -> f64 {
                    row.chunks(10)
                        .map(|step| cols.iter().map(|&c| step[c] as f64).sum::<f64>())
                        .sum()
                };
                let (a, b) = (sum(&s.a), sum(&s.b));
                (eps * (all - 2.0 * a) + eps * (all - 2.0 * b)).powi(2)
            })
            .sum::<f64>()
            / 50.0;
        // The same mean in two orders of summation: some 1e-15 relative.
        let t = data.success_threshold;
        assert!((t - moved).abs() < 1e-9 * moved, "{t} vs {moved}");
    }

    #[test]
    fn invalid_specs_are_refused_by_field() {
        let bad = RecurrentSpec {
            time: 0,
            ..RecurrentSpec::default()
        };
        assert_eq!(RecurrentTask::new(bad).unwrap_err().field(), "time");
    }
}
