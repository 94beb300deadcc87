//! The static-toy data: 100 uniform inputs, two fixed subsets summed into `a` and `b`.
//!
//! Two generators ([`Protocol`]): the Keras reference's (two halves of a permutation, inputs in
//! [0, 1), extrapolation by doubling) and Madsen & Johansen 2020's (contiguous overlapping
//! subsets, interpolation and extrapolation ranges, a success threshold from a nearly perfect
//! solution).

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use serde::Serialize;

use super::Operation;
use crate::formula::Naming;

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

/// `ε` of Madsen & Johansen's success threshold: the true weights perturbed by this much.
pub const MADSEN_EPSILON: f64 = 1e-5;

/// The settings of Madsen & Johansen 2020's static task (their defaults by [`Default`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MadsenSpec {
    /// Size of each subset as a fraction of the 100 inputs (0.25: 25 inputs).
    pub subset_ratio: f64,
    /// Fraction of a subset that `a` and `b` share (0.5: 12 of 25).
    pub overlap_ratio: f64,
    /// Training and validation inputs are uniform in `[lo, hi)`.
    pub interpolation: (f32, f32),
    /// Extrapolation inputs are uniform in `[lo, hi)`.
    pub extrapolation: (f32, f32),
}

impl Default for MadsenSpec {
    /// Subsets of 25 inputs overlapping by half, `U[1, 2)` and `U[2, 6)`.
    fn default() -> Self {
        Self {
            subset_ratio: 0.25,
            overlap_ratio: 0.5,
            interpolation: (1.0, 2.0),
            extrapolation: (2.0, 6.0),
        }
    }
}

impl MadsenSpec {
    /// `(subset size, overlap size)` for 100 inputs.
    pub fn sizes(&self) -> (usize, usize) {
        let size = (self.subset_ratio * N_FEATURES as f64).round() as usize;
        (size, (self.overlap_ratio * size as f64).floor() as usize)
    }

    /// Checks the ratios and ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let (size, overlap) = self.sizes();
        let range_ok = |(lo, hi): (f32, f32)| lo.is_finite() && hi.is_finite() && lo < hi;
        if size == 0 || 2 * size - overlap > N_FEATURES {
            Err(format!(
                "subset_ratio must give two subsets that fit 100 inputs, got {}",
                self.subset_ratio
            ))
        } else if !(0.0..=1.0).contains(&self.overlap_ratio) {
            Err(format!(
                "overlap_ratio must be in [0, 1], got {}",
                self.overlap_ratio
            ))
        } else if !range_ok(self.interpolation) {
            Err(format!(
                "interpolation range must have lo < hi, got {:?}",
                self.interpolation
            ))
        } else if !range_ok(self.extrapolation) {
            Err(format!(
                "extrapolation range must have lo < hi, got {:?}",
                self.extrapolation
            ))
        } else {
            Ok(())
        }
    }
}

/// Which data generator and success criterion to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "name")]
pub enum Protocol {
    /// The Keras reference's task: halves of a permutation, `U[0, 1)`, extrapolation `2·X`;
    /// success when the extrapolation MSE is below `1e-3 ×` the variance of its targets.
    #[default]
    Reference,
    /// Madsen & Johansen 2020: see [`MadsenSpec`]; success when the extrapolation MSE is below
    /// that of the true weights perturbed by [`MADSEN_EPSILON`].
    Madsen(MadsenSpec),
}

/// The three splits of one static-toy task, all from one seed.
///
/// With the reference's [`Protocol`] ([`StaticToyData::generate`]):
/// - `train`: `rows` rows, `X ~ U[0, 1)^100`.
/// - `valid`: `rows` fresh rows from the same distribution (interpolation), for model selection.
/// - `extrapolation`: the training rows with `X` doubled, so `a` and `b` double (the reference's
///   test set).
///
/// With Madsen & Johansen's ([`StaticToyData::madsen`]): `train` and `valid` from the
/// interpolation range, `extrapolation` fresh rows from the extrapolation range.
#[derive(Clone, Debug)]
pub struct StaticToyData {
    /// The operation the targets follow.
    pub op: Operation,
    /// The generator.
    pub protocol: Protocol,
    /// The columns summed into `a` (reference: the first half of a seeded permutation of 0..100).
    pub a_columns: Vec<usize>,
    /// The columns summed into `b` (reference: the second half).
    pub b_columns: Vec<usize>,
    /// A run succeeds when its extrapolation MSE is below this (see [`Protocol`]).
    pub success_threshold: f64,
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
            protocol: Protocol::Reference,
            a_columns: columns,
            b_columns,
            success_threshold: 0.0,
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
        data.success_threshold = 1e-3 * data.extrapolation.target_variance();
        data
    }

    /// Madsen & Johansen's static task: contiguous subsets `a = x[s..s+n]` and
    /// `b = x[s+n−o..s+2n−o]` at a seeded start `s` (sizes from `spec`), `rows` rows per split.
    ///
    /// # Panics
    /// If `spec` is invalid ([`MadsenSpec::validate`]).
    pub fn madsen(op: Operation, rows: usize, seed: u64, spec: &MadsenSpec) -> Self {
        if let Err(err) = spec.validate() {
            panic!("MadsenSpec: {err}");
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let (size, overlap) = spec.sizes();
        let start = rng.random_range(0..=N_FEATURES - (2 * size - overlap));
        let b_start = start + size - overlap;
        let empty = || Split {
            x: vec![],
            y: vec![],
        };
        let mut data = Self {
            op,
            protocol: Protocol::Madsen(*spec),
            a_columns: (start..start + size).collect(),
            b_columns: (b_start..b_start + size).collect(),
            success_threshold: 0.0,
            train: empty(),
            valid: empty(),
            extrapolation: empty(),
        };
        let mut uniform = |(lo, hi): (f32, f32)| -> Vec<f32> {
            (0..rows * N_FEATURES)
                .map(|_| rng.random_range(lo..hi))
                .collect()
        };
        let (train_x, valid_x) = (uniform(spec.interpolation), uniform(spec.interpolation));
        let extrapolation_x = uniform(spec.extrapolation);
        data.train = data.split(train_x);
        data.valid = data.split(valid_x);
        data.extrapolation = data.split(extrapolation_x);
        data.success_threshold = data.perturbed_mse(MADSEN_EPSILON);
        data
    }

    /// The data of `protocol` (see [`StaticToyData::generate`] and [`StaticToyData::madsen`]).
    pub fn for_protocol(protocol: &Protocol, op: Operation, rows: usize, seed: u64) -> Self {
        match protocol {
            Protocol::Reference => Self::generate(op, rows, seed),
            Protocol::Madsen(spec) => Self::madsen(op, rows, seed, spec),
        }
    }

    /// The extrapolation MSE of a nearly perfect solution: the sums' weights `1 − ε` on their
    /// subset and `ε` elsewhere, against the exact targets (Madsen & Johansen's threshold).
    pub fn perturbed_mse(&self, epsilon: f64) -> f64 {
        let weights = |cols: &[usize]| {
            let mut w = vec![epsilon; N_FEATURES];
            cols.iter().for_each(|&c| w[c] = 1.0 - epsilon);
            w
        };
        let (wa, wb) = (weights(&self.a_columns), weights(&self.b_columns));
        let dot = |w: &[f64], row: &[f32]| w.iter().zip(row).map(|(w, &x)| w * x as f64).sum();
        let split = &self.extrapolation;
        let total: f64 = split
            .x
            .chunks(N_FEATURES)
            .map(|row| {
                let (a, b) = self.halves(row);
                let perturbed = self.op.apply(dot(&wa, row), dot(&wb, row));
                (perturbed - self.op.apply(a, b)).powi(2)
            })
            .sum();
        total / split.rows() as f64
    }

    /// Names for the formula module: the columns of `a` and `b` as groups `a` and `b`.
    pub fn naming(&self) -> Naming {
        Naming::new()
            .with_group("a", &self.a_columns)
            .with_group("b", &self.b_columns)
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
    fn madsen_subsets_ranges_and_threshold() {
        let spec = MadsenSpec::default();
        let data = StaticToyData::madsen(Operation::Mul, 200, 8, &spec);
        let (a, b) = (&data.a_columns, &data.b_columns);
        assert_eq!((a.len(), b.len()), (25, 25));
        assert!(a.windows(2).all(|w| w[1] == w[0] + 1), "contiguous");
        assert_eq!(b[0], a[0] + 25 - 12, "b starts 12 inputs before a ends");
        assert!(data.train.x.iter().all(|&v| (1.0..2.0).contains(&v)));
        assert!(
            data.extrapolation
                .x
                .iter()
                .all(|&v| (2.0..6.0).contains(&v))
        );
        // The threshold is the MSE of weights 1 − ε / ε, recomputed here row by row.
        let eps = MADSEN_EPSILON;
        let mut total = 0.0;
        for (row, &y) in data
            .extrapolation
            .x
            .chunks(N_FEATURES)
            .zip(&data.extrapolation.y)
        {
            let all: f64 = row.iter().map(|&v| v as f64).sum();
            let (a, b) = data.halves(row);
            let (pa, pb) = (
                (1.0 - eps) * a + eps * (all - a),
                (1.0 - eps) * b + eps * (all - b),
            );
            assert_eq!(y, (a * b) as f32);
            total += (pa * pb - a * b).powi(2);
        }
        let want = total / 200.0;
        assert!(
            (data.success_threshold - want).abs() < 1e-9 * want,
            "{want}"
        );
        // a ≈ b ≈ 100 move by ε·(Σ other inputs − a) ≈ 2e-3, so a·b by about 0.4.
        assert!(
            (0.01..1.0).contains(&data.success_threshold),
            "{}",
            data.success_threshold
        );
    }

    #[test]
    fn madsen_spec_errors_name_the_field() {
        let bad = MadsenSpec {
            overlap_ratio: 1.5,
            ..MadsenSpec::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "overlap_ratio must be in [0, 1], got 1.5"
        );
        let bad = MadsenSpec {
            subset_ratio: 0.7,
            ..MadsenSpec::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("subset_ratio must"));
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
