//! Tasks: where an experiment's data comes from and how a run is judged.
//!
//! A [`Task`] makes, for an operation and a seed, the data of one run ([`TaskData`]): its
//! training rows or batch sampler, validation and extrapolation splits, the success threshold,
//! and the names of the input groups. The training loop, the read-back, the reports and the
//! command line work with any task; [`ReferenceTask`](super::ReferenceTask) and
//! [`MadsenTask`](super::MadsenTask) are the two this crate has. A new task is a type that
//! implements [`Task`], with a [`Protocol`] name and its [`TaskSettings`]; its rows may have any
//! shape (see [`Split`]).

pub use super::operation::Operation;
use super::protocol::{Protocol, TaskSettings};
use burn_nalu::formula::Naming;

/// A family of arithmetic tasks: the data of every operation and seed, and how it is judged.
pub trait Task: Send + Sync {
    /// The family's name, as reports and the command line write it.
    fn protocol(&self) -> Protocol;

    /// The data of one run: operation `op`, seed `seed`.
    fn data(&self, op: Operation, seed: u64) -> TaskData;

    /// The task's settings, as reports record them; runs with different settings are not
    /// comparable (a resumed run refuses to mix them).
    fn settings(&self) -> TaskSettings;
}

/// Rows of inputs and targets: the library's [`Rows`](burn_nalu::recipe::Rows).
///
/// A row is whatever one example of the task is, flattened: `width` input values (the features
/// of a static task, or `time × features` of a sequence) and `outputs` target values (one, or
/// one per time step). The training loop feeds a model `[runs, rows, width]` and compares its
/// `[runs, rows, outputs]` with the targets, so a task of another shape needs a model that reads
/// its rows, not another loop.
pub use burn_nalu::recipe::Rows as Split;

/// Draws fresh training batches.
pub trait BatchSampler: Send {
    /// Appends `rows` fresh rows to `x` (row-major, the task's width per row) and their targets
    /// to `y` (the task's outputs per row).
    fn sample(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>);

    /// Fills `x` with `rows` fresh rows and `y` with their targets (slices of exactly that
    /// size), the rows [`BatchSampler::sample`] would append. A sampler that can write in place
    /// overrides this; by default the rows are drawn with `sample` and copied.
    fn sample_into(&mut self, rows: usize, x: &mut [f32], y: &mut [f32]) {
        let (mut xs, mut ys) = (Vec::with_capacity(x.len()), Vec::with_capacity(y.len()));
        self.sample(rows, &mut xs, &mut ys);
        x.copy_from_slice(&xs);
        y.copy_from_slice(&ys);
    }

    /// A copy in the same state (it draws the same batches from here on).
    fn boxed_clone(&self) -> Box<dyn BatchSampler>;

    /// The state it draws on from, for a training checkpoint
    /// ([`Trainer::checkpoint`](super::Trainer::checkpoint)); `None` (the default): it has no
    /// checkpoint, and neither has a population that trains on it.
    fn state(&self) -> Option<Vec<u32>> {
        None
    }

    /// Returns to a state [`BatchSampler::state`] gave; `Err` with the reason when `state` is
    /// not one of this sampler's.
    fn set_state(&mut self, state: &[u32]) -> Result<(), String> {
        let _ = state;
        Err("this sampler has no checkpoint".into())
    }
}

impl Clone for TrainingData {
    fn clone(&self) -> Self {
        match self {
            Self::Rows(split) => Self::Rows(split.clone()),
            Self::Stream(sampler) => Self::Stream(sampler.boxed_clone()),
        }
    }
}

/// How a run gets its training batches.
pub enum TrainingData {
    /// Fixed rows, in epochs of shuffled mini-batches (the last one of an epoch may be smaller).
    Rows(Split),
    /// A fresh batch from the sampler at every step.
    Stream(Box<dyn BatchSampler>),
}

/// The data of one run of a [`Task`]: one operation, one seed.
#[derive(Clone)]
pub struct TaskData {
    /// The task's family ([`Task::protocol`]).
    pub protocol: Protocol,
    /// The operation the targets follow.
    pub op: Operation,
    /// The seed the data was made from (also the run's seed for initialisation and shuffling).
    pub seed: u64,
    /// Training batches.
    pub train: TrainingData,
    /// Held-out rows from the training distribution, for model selection.
    pub valid: Split,
    /// Rows outside the training range, for the success criterion only.
    pub extrapolation: Split,
    /// A run succeeds when its extrapolation MSE is below this.
    pub success_threshold: f64,
    /// The same criterion on the validation split: a run whose validation MSE is at most this
    /// has converged as far as the training distribution can tell (early stopping reads this,
    /// never the extrapolation split).
    pub valid_threshold: f64,
    /// The input groups (`a`, `b`), for the formula read-back.
    pub subsets: Subsets,
    /// Input values per time step: a row's whole width for a static task, one step's for a
    /// sequence task (whose rows are `width / step_width` steps, a number that may differ
    /// between splits). A model is built for this many inputs per step.
    pub step_width: usize,
}

impl TaskData {
    /// Input values per row.
    pub fn width(&self) -> usize {
        self.valid.width
    }

    /// Target values per row.
    pub fn outputs(&self) -> usize {
        self.valid.outputs
    }

    /// The training rows, when the task has fixed ones.
    pub fn train_rows(&self) -> Option<&Split> {
        match &self.train {
            TrainingData::Rows(split) => Some(split),
            TrainingData::Stream(_) => None,
        }
    }
}

/// The two groups of input columns whose sums are `a` and `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subsets {
    /// The columns summed into `a`.
    pub a: Vec<usize>,
    /// The columns summed into `b`.
    pub b: Vec<usize>,
}

impl Subsets {
    /// `(a, b)` of one input row, summed in f64.
    pub fn sums(&self, row: &[f32]) -> (f64, f64) {
        let (a, b) = (Columns::of(&self.a), Columns::of(&self.b));
        (a.sum(row), b.sum(row))
    }

    /// The targets `op(a, b)` of the rows of `x` (`width` values a row), rounded to f32.
    pub fn targets(&self, op: Operation, x: &[f32], width: usize) -> Vec<f32> {
        let mut y = vec![0.0; x.len() / width];
        self.targets_into(op, x, width, &mut y);
        y
    }

    /// [`Subsets::targets`] into `y` (one value per row of `x`), for a sampler's batch in
    /// place.
    pub(crate) fn targets_into(&self, op: Operation, x: &[f32], width: usize, y: &mut [f32]) {
        let (a, b) = (Columns::of(&self.a), Columns::of(&self.b));
        for (row, y) in x.chunks_exact(width).zip(y) {
            *y = op.apply(a.sum(row), b.sum(row)) as f32;
        }
    }

    /// The split of inputs `x` with targets `op(a, b)`.
    pub fn split(&self, op: Operation, x: Vec<f32>, width: usize) -> Split {
        let y = self.targets(op, &x, width);
        Split {
            x,
            y,
            width,
            outputs: 1,
        }
    }

    /// The MSE on `split` of a nearly perfect solution: the sums' weights `1 − ε` on their
    /// subset and `ε` elsewhere, against the exact targets (Madsen & Johansen's threshold).
    pub fn perturbed_mse(&self, op: Operation, split: &Split, epsilon: f64) -> f64 {
        let weights = |cols: &[usize]| {
            let mut w = vec![epsilon; split.width];
            cols.iter().for_each(|&c| w[c] = 1.0 - epsilon);
            w
        };
        let (wa, wb) = (weights(&self.a), weights(&self.b));
        let dot = |w: &[f64], row: &[f32]| w.iter().zip(row).map(|(w, &x)| w * x as f64).sum();
        let total: f64 = split
            .x
            .chunks(split.width)
            .map(|row| {
                let (a, b) = self.sums(row);
                (op.apply(dot(&wa, row), dot(&wb, row)) - op.apply(a, b)).powi(2)
            })
            .sum();
        total / split.rows() as f64
    }

    /// Names for the formula module: the columns of `a` and `b` as groups `a` and `b`.
    pub fn naming(&self) -> Naming {
        Naming::new()
            .with_group("a", &self.a)
            .with_group("b", &self.b)
    }
}

/// A set of columns to sum: a contiguous range (Madsen & Johansen's subsets) or any list (the
/// reference task's).
enum Columns<'a> {
    Range(core::ops::Range<usize>),
    List(&'a [usize]),
}

impl<'a> Columns<'a> {
    fn of(cols: &'a [usize]) -> Self {
        match cols.windows(2).all(|w| w[1] == w[0] + 1) && !cols.is_empty() {
            true => Columns::Range(cols[0]..cols[0] + cols.len()),
            false => Columns::List(cols),
        }
    }

    /// `Σ row[c]` in f64: a list in index order; a range in four interleaved partial sums,
    /// which vectorise and leave no chain of dependent adds (another order than one running
    /// sum, by some 1e-16 relative: far below the f32 the targets are rounded to).
    #[inline(always)]
    fn sum(&self, row: &[f32]) -> f64 {
        match self {
            Columns::List(cols) => cols.iter().map(|&c| row[c] as f64).sum(),
            Columns::Range(range) => {
                #[cfg(target_arch = "x86_64")]
                if burn_nalu::internals::active_simd() >= burn_nalu::simd::SimdLevel::Avx2 {
                    // SAFETY: the level in force is one the CPU supports, so it has AVX2.
                    return unsafe { range_sum_avx2(&row[range.clone()]) };
                }
                let chunks = row[range.clone()].chunks_exact(4);
                let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
                let mut acc = [0.0f64; 4];
                for chunk in chunks {
                    for k in 0..4 {
                        acc[k] += chunk[k] as f64;
                    }
                }
                (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
            }
        }
    }
}

/// [`Columns::sum`] of a range with its four partial sums as one AVX2 register: the same adds
/// in the same order, so the same bits. (Left to the compiler, they went into two SSE2
/// registers with shuffles: a tenth of a Madsen step, measured.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn range_sum_avx2(values: &[f32]) -> f64 {
    use std::arch::x86_64::{
        _mm_loadu_ps, _mm256_add_pd, _mm256_cvtps_pd, _mm256_setzero_pd, _mm256_storeu_pd,
    };
    let chunks = values.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    let mut acc = _mm256_setzero_pd();
    for chunk in chunks {
        // SAFETY: `chunk` holds four f32, the 16 bytes an unaligned load reads.
        let four = unsafe { _mm_loadu_ps(chunk.as_ptr()) };
        acc = _mm256_add_pd(acc, _mm256_cvtps_pd(four));
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds the four f64 an unaligned store writes.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), acc) };
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 sum of a range takes the portable sum's bits (ranges of every length to 40, at
    /// every offset in a row, values of many magnitudes), whatever the SIMD level in force.
    #[test]
    fn range_sums_are_the_same_at_every_simd_level() {
        let row: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 10f32.powi(i % 7 - 3))
            .collect();
        for start in 0..8 {
            for len in 1..40 {
                let cols: Vec<usize> = (start..start + len).collect();
                let sums = burn_nalu::simd::SimdLevel::ALL
                    .into_iter()
                    .filter(|l| l.is_supported())
                    .map(|l| {
                        burn_nalu::internals::pinned_simd(l, || Columns::of(&cols).sum(&row))
                            .to_bits()
                    })
                    .collect::<Vec<_>>();
                assert!(
                    sums.windows(2).all(|w| w[0] == w[1]),
                    "{start}+{len}: {sums:?}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for op in Operation::ALL {
            assert_eq!(op.name().parse::<Operation>(), Ok(op));
        }
        assert_eq!(
            "pow".parse::<Operation>().unwrap_err(),
            "unknown task 'pow' (expected one of add, sub, mul, div, square, sqrt)"
        );
    }

    #[test]
    fn apply_computes_each_operation() {
        let got: Vec<f64> = Operation::ALL.iter().map(|op| op.apply(9.0, 3.0)).collect();
        assert_eq!(got, [12.0, 6.0, 27.0, 3.0, 81.0, 3.0]);
    }

    #[test]
    fn perturbed_solution_errs_by_epsilon_times_the_other_inputs() {
        let subsets = Subsets {
            a: vec![0, 1],
            b: vec![1, 2],
        };
        let split = subsets.split(Operation::Add, vec![1.0, 2.0, 4.0, 8.0], 4);
        // a = 3, b = 6; perturbed a' = (1 − ε)·3 + ε·12, b' = (1 − ε)·6 + ε·9:
        // a' + b' − 9 = ε·(12 − 3 + 9 − 6) = 12ε.
        let eps = 1e-3f64;
        let want = (12.0 * eps).powi(2);
        let got = subsets.perturbed_mse(Operation::Add, &split, eps);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}
