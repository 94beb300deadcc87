//! The static-toy data: 100 uniform inputs, two fixed halves summed into `a` and `b`.

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::Operation;

/// Rows in each split, as in the reference.
pub const ROWS: usize = 1000;

/// Number of input features.
pub const N_FEATURES: usize = 100;

/// One split: inputs `x` (row-major `[rows, 100]`) and targets `y` (`[rows]`).
#[derive(Clone, Debug)]
pub struct Split {
    /// Row-major inputs, `rows × 100`.
    pub x: Vec<f32>,
    /// Targets, one per row.
    pub y: Vec<f32>,
}

impl Split {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// `(x, y)` as tensors of shapes `[rows, 100]` and `[rows, 1]`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let rows = self.rows();
        (
            Tensor::from_data(TensorData::new(self.x.clone(), [rows, N_FEATURES]), device),
            Tensor::from_data(TensorData::new(self.y.clone(), [rows, 1]), device),
        )
    }

    /// The population variance of the targets.
    pub fn target_variance(&self) -> f64 {
        let n = self.y.len() as f64;
        let mean = self.y.iter().map(|&v| v as f64).sum::<f64>() / n;
        self.y
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n
    }
}

/// The three splits of one static-toy task, all from one seed.
///
/// - `train`: `rows` rows, `X ~ U[0, 1)^100`.
/// - `valid`: `rows` fresh rows from the same distribution (interpolation), for model selection.
/// - `extrapolation`: the training rows with `X` doubled, so `a` and `b` double (the reference's
///   test set).
#[derive(Clone, Debug)]
pub struct StaticToyData {
    /// The operation the targets follow.
    pub op: Operation,
    /// The columns summed into `a`: the first half of a seeded permutation of 0..100.
    pub a_columns: Vec<usize>,
    /// The columns summed into `b`: the second half.
    pub b_columns: Vec<usize>,
    /// Training split.
    pub train: Split,
    /// Held-out interpolation split (model selection).
    pub valid: Split,
    /// Extrapolation split: `2 × train.x`.
    pub extrapolation: Split,
}

impl StaticToyData {
    /// Generates the three splits of `rows` rows each for `op` from `seed`.
    pub fn generate(op: Operation, rows: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut columns: Vec<usize> = (0..N_FEATURES).collect();
        columns.shuffle(&mut rng);
        let b_columns = columns.split_off(N_FEATURES / 2);
        let mut data = Self {
            op,
            a_columns: columns,
            b_columns,
            train: Split {
                x: vec![],
                y: vec![],
            },
            valid: Split {
                x: vec![],
                y: vec![],
            },
            extrapolation: Split {
                x: vec![],
                y: vec![],
            },
        };
        let mut uniform = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>()).collect() };
        let train_x = uniform(rows * N_FEATURES);
        let valid_x = uniform(rows * N_FEATURES);
        // Doubling is exact in binary floating point, so a and b double exactly too.
        let extrapolation_x = train_x.iter().map(|v| 2.0 * v).collect();
        data.train = data.split(train_x);
        data.valid = data.split(valid_x);
        data.extrapolation = data.split(extrapolation_x);
        data
    }

    /// `(a, b)` of one input row, summed in f64.
    pub fn halves(&self, row: &[f32]) -> (f64, f64) {
        let sum = |cols: &[usize]| cols.iter().map(|&c| row[c] as f64).sum::<f64>();
        (sum(&self.a_columns), sum(&self.b_columns))
    }

    fn split(&self, x: Vec<f32>) -> Split {
        let y = x
            .chunks(N_FEATURES)
            .map(|row| {
                let (a, b) = self.halves(row);
                self.op.apply(a, b) as f32
            })
            .collect();
        Split { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_partition_the_columns() {
        let data = StaticToyData::generate(Operation::Add, 3, 1);
        let mut all: Vec<usize> = data
            .a_columns
            .iter()
            .chain(&data.b_columns)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..N_FEATURES).collect::<Vec<_>>());
        assert_eq!(data.a_columns.len(), 50);
        assert_ne!(
            data.a_columns,
            (0..50).collect::<Vec<_>>(),
            "columns are permuted"
        );
    }

    #[test]
    fn targets_follow_the_operation_on_the_halves() {
        for op in Operation::ALL {
            let data = StaticToyData::generate(op, 20, 2);
            for split in [&data.train, &data.valid, &data.extrapolation] {
                for (row, &y) in split.x.chunks(N_FEATURES).zip(&split.y) {
                    let a: f64 = data.a_columns.iter().map(|&c| row[c] as f64).sum();
                    let b: f64 = data.b_columns.iter().map(|&c| row[c] as f64).sum();
                    assert_eq!(y, op.apply(a, b) as f32, "{op}");
                }
            }
        }
    }

    #[test]
    fn inputs_are_uniform_in_unit_interval() {
        let data = StaticToyData::generate(Operation::Add, 100, 3);
        assert!(data.train.x.iter().all(|&v| (0.0..1.0).contains(&v)));
        let mean = data.train.x.iter().sum::<f32>() / data.train.x.len() as f32;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn extrapolation_is_exactly_twice_the_training_inputs() {
        let data = StaticToyData::generate(Operation::Mul, 50, 4);
        let doubled: Vec<f32> = data.train.x.iter().map(|v| v * 2.0).collect();
        assert_eq!(data.extrapolation.x, doubled);
        for (row, (&y2, &y)) in data
            .train
            .x
            .chunks(N_FEATURES)
            .zip(data.extrapolation.y.iter().zip(&data.train.y))
        {
            let (a, b) = data.halves(row);
            assert_eq!(y2, (2.0 * a * 2.0 * b) as f32);
            assert_eq!(y, (a * b) as f32);
        }
    }

    #[test]
    fn validation_rows_are_fresh() {
        let data = StaticToyData::generate(Operation::Add, 10, 5);
        assert_ne!(data.valid.x, data.train.x);
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = StaticToyData::generate(Operation::Div, 10, 6);
        let b = StaticToyData::generate(Operation::Div, 10, 6);
        let c = StaticToyData::generate(Operation::Div, 10, 7);
        assert_eq!(
            (&a.train.x, &a.valid.y, &a.a_columns),
            (&b.train.x, &b.valid.y, &b.a_columns)
        );
        assert_ne!(a.train.x, c.train.x);
        assert_ne!(a.a_columns, c.a_columns);
    }
}
