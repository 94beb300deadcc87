//! The static task of Trask et al. 2018 (Table 1), as the Keras reference describes it.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::protocol::{Protocol, TaskSettings, WIDTH};
use super::task::{Operation, Subsets, Task, TaskData, TrainingData};

/// The Keras reference's static task: 100 inputs uniform in [0, 1); a seeded permutation of
/// the columns splits them into two halves whose row sums are `a` and `b`.
///
/// - training: `rows` fixed rows, in epochs of shuffled mini-batches;
/// - validation: `rows` fresh rows from the same distribution (for model selection only);
/// - extrapolation: the training rows with `x` doubled, so `a` and `b` double (the reference's
///   test set);
/// - success: extrapolation MSE below `1e-3 ×` the variance of the extrapolation targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReferenceTask {
    /// Rows in each split (1000 in the reference).
    pub rows: usize,
}

impl Default for ReferenceTask {
    /// 1000 rows per split, as the reference.
    fn default() -> Self {
        Self { rows: 1000 }
    }
}

impl Task for ReferenceTask {
    fn protocol(&self) -> Protocol {
        Protocol::Reference
    }

    fn data(&self, op: Operation, seed: u64) -> TaskData {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut columns: Vec<usize> = (0..WIDTH).collect();
        columns.shuffle(&mut rng);
        let b = columns.split_off(WIDTH / 2);
        let subsets = Subsets { a: columns, b };
        let mut uniform = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>()).collect() };
        let train_x = uniform(self.rows * WIDTH);
        let valid_x = uniform(self.rows * WIDTH);
        // Doubling is exact in binary floating point, so a and b double exactly too.
        let extrapolation_x = train_x.iter().map(|v| 2.0 * v).collect();
        let extrapolation = subsets.split(op, extrapolation_x, WIDTH);
        let valid = subsets.split(op, valid_x, WIDTH);
        TaskData {
            protocol: self.protocol(),
            op,
            seed,
            train: TrainingData::Rows(subsets.split(op, train_x, WIDTH)),
            valid_threshold: 1e-3 * valid.target_variance(),
            valid,
            success_threshold: 1e-3 * extrapolation.target_variance(),
            extrapolation,
            subsets,
        }
    }

    fn settings(&self) -> TaskSettings {
        TaskSettings::Reference { rows: self.rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(op: Operation, rows: usize, seed: u64) -> TaskData {
        ReferenceTask { rows }.data(op, seed)
    }

    #[test]
    fn halves_partition_the_columns() {
        let d = data(Operation::Add, 3, 1);
        let mut all: Vec<usize> = d.subsets.a.iter().chain(&d.subsets.b).copied().collect();
        all.sort();
        assert_eq!(all, (0..WIDTH).collect::<Vec<_>>());
        assert_eq!(d.subsets.a.len(), 50);
        assert_ne!(
            d.subsets.a,
            (0..50).collect::<Vec<_>>(),
            "columns are permuted"
        );
    }

    #[test]
    fn targets_follow_the_operation_on_the_halves() {
        for op in Operation::ALL {
            let d = data(op, 20, 2);
            for split in [d.train_rows().unwrap(), &d.valid, &d.extrapolation] {
                for (row, &y) in split.x.chunks(WIDTH).zip(&split.y) {
                    let a: f64 = d.subsets.a.iter().map(|&c| row[c] as f64).sum();
                    let b: f64 = d.subsets.b.iter().map(|&c| row[c] as f64).sum();
                    assert_eq!(y, op.apply(a, b) as f32, "{op}");
                }
            }
        }
    }

    #[test]
    fn inputs_are_uniform_in_unit_interval() {
        let d = data(Operation::Add, 100, 3);
        let x = &d.train_rows().unwrap().x;
        assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
        // 10⁴ draws: the mean's standard deviation is 0.29/100; the f32 sum rounds by < 3e-4.
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn extrapolation_is_exactly_twice_the_training_inputs() {
        let d = data(Operation::Mul, 50, 4);
        let train = d.train_rows().unwrap();
        let doubled: Vec<f32> = train.x.iter().map(|v| v * 2.0).collect();
        assert_eq!(d.extrapolation.x, doubled);
        for (row, (&y2, &y)) in train
            .x
            .chunks(WIDTH)
            .zip(d.extrapolation.y.iter().zip(&train.y))
        {
            let (a, b) = d.subsets.sums(row);
            assert_eq!(y2, (2.0 * a * 2.0 * b) as f32);
            assert_eq!(y, (a * b) as f32);
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let (a, b, c) = (
            data(Operation::Div, 10, 6),
            data(Operation::Div, 10, 6),
            data(Operation::Div, 10, 7),
        );
        assert_eq!(a.train_rows().unwrap().x, b.train_rows().unwrap().x);
        assert_eq!((&a.valid.y, &a.subsets), (&b.valid.y, &b.subsets));
        assert_ne!(a.train_rows().unwrap().x, c.train_rows().unwrap().x);
        assert_ne!(a.subsets, c.subsets);
    }
}
