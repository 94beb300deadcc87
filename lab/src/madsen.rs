//! The static task of Madsen & Johansen 2020, "Neural Arithmetic Units", as their code runs it.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::protocol::{MadsenSpec, Protocol, TaskSettings, WIDTH};
use super::stacks::ModelKind;
use super::task::{BatchSampler, Operation, Subsets, Task, TaskData, TrainingData};
use burn_nalu::ConfigError;

/// `ε` of Madsen & Johansen's success threshold: the true weights perturbed by this much.
pub const MADSEN_EPSILON: f64 = 1e-5;

/// Seeds of the validation and extrapolation rows, shared by every run as in their code (which
/// draws them from two fixed seeds and varies only the subsets with the run's seed).
pub(super) const VALID_SEED: u64 = 43_953_907;
pub(super) const EXTRAPOLATION_SEED: u64 = 8_689_336;

/// Madsen & Johansen's static task: `a` and `b` sum two contiguous subsets of the 100 inputs
/// that overlap (25 inputs sharing 12, at a seeded offset); a fresh batch from the
/// interpolation range at every step; fixed validation and extrapolation rows (10,000 each,
/// `U[1, 2)` and `U[2, 6)`); success when the extrapolation MSE is below that of the true weights
/// moved by [`MADSEN_EPSILON`] towards the wrong value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MadsenTask {
    /// The settings.
    pub spec: MadsenSpec,
}

impl MadsenTask {
    /// The task with `spec`.
    ///
    /// # Errors
    /// If `spec` is invalid ([`MadsenSpec::validate`]); the error names the field.
    pub fn new(spec: MadsenSpec) -> Result<Self, ConfigError> {
        spec.validate()?;
        Ok(Self { spec })
    }

    /// The subsets of `seed`: `a = x[s..s+n]`, `b = x[s+n−o..s+2n−o]` at a seeded start `s`.
    pub fn subsets(&self, seed: u64) -> Subsets {
        overlapping_subsets(seed, WIDTH, self.spec.sizes())
    }
}

/// Two contiguous subsets of `width` columns, `size` each, sharing `overlap`, at a start drawn
/// from `seed`: `a = x[s..s+n]`, `b = x[s+n−o..s+2n−o]` (Madsen & Johansen's, for rows or for
/// one step's features).
pub(super) fn overlapping_subsets(
    seed: u64,
    width: usize,
    (size, overlap): (usize, usize),
) -> Subsets {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = rng.random_range(0..=width - (2 * size - overlap));
    let b_start = start + size - overlap;
    Subsets {
        a: (start..start + size).collect(),
        b: (b_start..b_start + size).collect(),
    }
}

impl Task for MadsenTask {
    fn protocol(&self) -> Protocol {
        Protocol::Madsen
    }

    fn data(&self, op: Operation, seed: u64) -> TaskData {
        let subsets = self.subsets(seed);
        let rows = |range: (f32, f32), seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let x = (0..self.spec.eval_rows * WIDTH)
                .map(|_| rng.random_range(range.0..range.1))
                .collect();
            subsets.split(op, x, WIDTH)
        };
        let valid = rows(self.spec.interpolation, VALID_SEED);
        let extrapolation = rows(self.spec.extrapolation, EXTRAPOLATION_SEED);
        let sampler = UniformBatches {
            uniform: Uniform::new(seed, self.spec.interpolation),
            subsets: subsets.clone(),
            width: WIDTH,
            op,
        };
        TaskData {
            protocol: self.protocol(),
            op,
            seed,
            train: TrainingData::Stream(Box::new(sampler)),
            valid_threshold: subsets.perturbed_mse(op, &valid, MADSEN_EPSILON),
            valid,
            success_threshold: subsets.perturbed_mse(op, &extrapolation, MADSEN_EPSILON),
            extrapolation,
            subsets,
            step_width: WIDTH,
        }
    }

    fn settings(&self) -> TaskSettings {
        TaskSettings::Madsen(self.spec)
    }
}

/// A success rate Madsen & Johansen published for their static task: `successes` of `seeds`
/// (100) runs of `model` on `op` (`paper/results/function_task_static.tex` in stable-nalu; the
/// paper plots them with Wilson 95% intervals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedRate {
    /// The stack (their "NAU" is NAU → NAU, "NMU" NAU → NMU).
    pub model: ModelKind,
    /// The operation.
    pub op: Operation,
    /// Successful seeds.
    pub successes: usize,
    /// Seeds run.
    pub seeds: usize,
}

/// Their static table (`function_task_static_all.tex`), the cells with a model of this crate:
/// NAU → NAU (their "NAU"), NAU → NMU ("NMU"), NAC → NAC ("NAC+"), NAC → NAC• ("NAC•") and
/// NALU → NALU, on all six operations, each of 100 seeds.
pub const MADSEN_PUBLISHED: [PublishedRate; 30] = {
    use ModelKind::{Nac, NacMul, Nalu, Nau, NauNmu};
    use Operation::{Add, Div, Mul, Sqrt, Square, Sub};
    [
        rate(Nau, Add, 100),
        rate(Nac, Add, 100),
        rate(Nalu, Add, 14),
        rate(NauNmu, Add, 0),
        rate(NacMul, Add, 0),
        rate(Nau, Sub, 100),
        rate(Nac, Sub, 100),
        rate(Nalu, Sub, 14),
        rate(NauNmu, Sub, 56),
        rate(NacMul, Sub, 0),
        rate(NauNmu, Mul, 98),
        rate(NacMul, Mul, 31),
        rate(Nalu, Mul, 0),
        rate(Nau, Mul, 0),
        rate(Nac, Mul, 0),
        rate(NauNmu, Div, 0),
        rate(NacMul, Div, 0),
        rate(Nalu, Div, 0),
        rate(Nau, Div, 0),
        rate(Nac, Div, 0),
        rate(NauNmu, Sqrt, 0),
        rate(NacMul, Sqrt, 7),
        rate(Nalu, Sqrt, 2),
        rate(Nau, Sqrt, 0),
        rate(Nac, Sqrt, 0),
        rate(NauNmu, Square, 100),
        rate(NacMul, Square, 77),
        rate(Nalu, Square, 0),
        rate(Nau, Square, 0),
        rate(Nac, Square, 0),
    ]
};

const fn rate(model: ModelKind, op: Operation, successes: usize) -> PublishedRate {
    PublishedRate {
        model,
        op,
        successes,
        seeds: 100,
    }
}

/// Madsen & Johansen's published rate for `model` on `op`, where they report one.
pub fn published_rate(model: ModelKind, op: Operation) -> Option<PublishedRate> {
    MADSEN_PUBLISHED
        .into_iter()
        .find(|r| r.model == model && r.op == op)
}

/// Fresh rows: inputs from [`Uniform`], targets `op(a, b)`.
#[derive(Clone)]
pub(super) struct UniformBatches {
    pub(super) uniform: Uniform,
    pub(super) subsets: Subsets,
    /// Inputs per row.
    pub(super) width: usize,
    pub(super) op: Operation,
}

impl BatchSampler for UniformBatches {
    fn sample(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) {
        let (xs, ys) = (x.len(), y.len());
        x.resize(xs + rows * self.width, 0.0);
        y.resize(ys + rows, 0.0);
        self.sample_into(rows, &mut x[xs..], &mut y[ys..]);
    }

    fn sample_into(&mut self, rows: usize, x: &mut [f32], y: &mut [f32]) {
        self.uniform.fill_slice(&mut x[..rows * self.width]);
        let x = &x[..rows * self.width];
        self.subsets
            .targets_into(self.op, x, self.width, &mut y[..rows]);
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

/// Number of independent generators [`Uniform`] interleaves, so that its loop vectorises.
const LANES: usize = 8;

/// Uniform f32 in `[lo, hi)` from eight interleaved xoshiro128+ generators: a fresh batch
/// of 12,800 inputs costs a few microseconds, where a scalar generator would cost more than the
/// training step it feeds. Each draw takes the generator's top 23 bits as the mantissa of a
/// number in [1, 2) (the low bits of xoshiro128+ are its weak ones), mapped onto the range.
#[derive(Clone)]
pub(super) struct Uniform {
    state: [[u32; LANES]; 4],
    lo: f32,
    width: f32,
}

impl Uniform {
    /// The generator of `seed`, its lanes seeded by SplitMix64 (as xoshiro's authors advise).
    pub(super) fn new(seed: u64, (lo, hi): (f32, f32)) -> Self {
        let mut z = seed ^ 0x6A09_E667_F3BC_C908;
        let mut splitmix = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut v = z;
            v = (v ^ (v >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            v = (v ^ (v >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            v ^ (v >> 31)
        };
        let mut state = [[0u32; LANES]; 4];
        for lane in 0..LANES {
            let (s01, s23) = (splitmix(), splitmix());
            // The last word is odd, so a lane's state is never all zero.
            let words = [
                s01 as u32,
                (s01 >> 32) as u32,
                s23 as u32,
                (s23 >> 32) as u32 | 1,
            ];
            for (row, word) in state.iter_mut().zip(words) {
                row[lane] = word;
            }
        }
        Self {
            state,
            lo,
            width: hi - lo,
        }
    }

    /// The generators' state, lane by lane (a [`BatchSampler::state`]).
    pub(super) fn state(&self) -> Vec<u32> {
        self.state.iter().flatten().copied().collect()
    }

    /// Returns to a state [`Uniform::state`] gave.
    pub(super) fn set_state(&mut self, state: &[u32]) -> Result<(), String> {
        if state.len() != 4 * LANES {
            let got = state.len();
            return Err(format!(
                "a uniform generator's state is {} words, not {got}",
                4 * LANES
            ));
        }
        for (row, words) in self.state.iter_mut().zip(state.chunks_exact(LANES)) {
            row.copy_from_slice(words);
        }
        Ok(())
    }

    /// Appends `n` draws to `out`.
    pub(super) fn append(&mut self, n: usize, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + n, 0.0);
        self.fill_slice(&mut out[start..]);
    }

    /// Fills `out` with `out.len()` draws, a block of the generators at a time (the unused
    /// draws of a last, partial block are dropped).
    pub(super) fn fill_slice(&mut self, out: &mut [f32]) {
        for chunk in out.chunks_mut(32 * LANES) {
            match chunk.try_into() {
                Ok(block) => self.fill(block),
                Err(_) => {
                    let mut block = [0.0f32; 32 * LANES];
                    self.fill(&mut block);
                    chunk.copy_from_slice(&block[..chunk.len()]);
                }
            }
        }
    }

    /// Fills `out` (a multiple of [`LANES`] long) with draws, with AVX2 where the CPU has it:
    /// the same integer steps and exact float conversions, so the same draws.
    fn fill(&mut self, out: &mut [f32; 32 * LANES]) {
        #[cfg(target_arch = "x86_64")]
        if burn_nalu::internals::active_simd() >= burn_nalu::simd::SimdLevel::Avx2 {
            // SAFETY: the level in force is one the CPU supports, so it has AVX2.
            return unsafe { self.fill_avx2(out) };
        }
        self.fill_body(out)
    }

    // Also with AVX-512 this copy: compiled with AVX-512VL (for its one-instruction rotate),
    // the compiler packed two state words into each 512-bit register and spent more on
    // extracting them than the rotate saves (the sampler went from 13% to 20% of a step).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&mut self, out: &mut [f32; 32 * LANES]) {
        self.fill_body(out)
    }

    #[inline(always)]
    fn fill_body(&mut self, out: &mut [f32; 32 * LANES]) {
        let (lo, width) = (self.lo, self.width);
        let [s0, s1, s2, s3] = &mut self.state;
        for chunk in out.chunks_exact_mut(LANES) {
            for l in 0..LANES {
                let bits = s0[l].wrapping_add(s3[l]);
                let t = s1[l] << 9;
                s2[l] ^= s0[l];
                s3[l] ^= s1[l];
                s1[l] ^= s2[l];
                s0[l] ^= s3[l];
                s2[l] ^= t;
                s3[l] = s3[l].rotate_left(11);
                // [1, 2) onto [lo, hi): exact for [1, 2) itself (f − 1 is exact, then + 1).
                let one_to_two = f32::from_bits((bits >> 9) | 0x3f80_0000);
                chunk[l] = lo + (one_to_two - 1.0) * width;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_contiguous_overlapping_and_seeded() {
        let task = MadsenTask::default();
        let s = task.subsets(8);
        assert_eq!((s.a.len(), s.b.len()), (25, 25));
        assert!(s.a.windows(2).all(|w| w[1] == w[0] + 1), "contiguous");
        assert_eq!(s.b[0], s.a[0] + 25 - 12, "b starts 12 inputs before a ends");
        assert!(*s.b.last().unwrap() < WIDTH);
        let starts: std::collections::BTreeSet<usize> =
            (0..40).map(|seed| task.subsets(seed).a[0]).collect();
        assert!(
            starts.len() > 10,
            "the offset varies with the seed: {starts:?}"
        );
    }

    /// Drawing in place draws the rows and targets that appending draws, batch after batch,
    /// whole blocks of the generator or not (3 rows are 300 draws, a block is 256).
    #[test]
    fn sampling_in_place_draws_what_appending_draws() {
        let TrainingData::Stream(appending) = MadsenTask::default().data(Operation::Mul, 3).train
        else {
            panic!("Madsen's task draws fresh batches");
        };
        let mut in_place = appending.boxed_clone();
        let mut appending = appending;
        for rows in [128, 3, 128] {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            appending.sample(rows, &mut x, &mut y);
            let (mut x2, mut y2) = (vec![0.0; rows * WIDTH], vec![0.0; rows]);
            in_place.sample_into(rows, &mut x2, &mut y2);
            assert!(x == x2 && y == y2, "{rows} rows");
        }
    }

    #[test]
    fn ranges_rows_threshold_and_fresh_batches() {
        let task = MadsenTask::new(MadsenSpec {
            eval_rows: 200,
            ..MadsenSpec::default()
        })
        .unwrap();
        let mut data = task.data(Operation::Mul, 8);
        assert_eq!((data.valid.rows(), data.extrapolation.rows()), (200, 200));
        assert!(data.valid.x.iter().all(|&v| (1.0..2.0).contains(&v)));
        assert!(
            data.extrapolation
                .x
                .iter()
                .all(|&v| (2.0..6.0).contains(&v))
        );
        // Validation and extrapolation rows are shared by seeds; the subsets are not.
        let other = task.data(Operation::Mul, 9);
        assert_eq!(data.valid.x, other.valid.x);
        assert_ne!(data.subsets, other.subsets);
        // The threshold is the MSE of weights 1 − ε / ε, recomputed here row by row.
        let eps = MADSEN_EPSILON;
        let mut total = 0.0;
        for row in data.extrapolation.x.chunks(WIDTH) {
            let all: f64 = row.iter().map(|&v| v as f64).sum();
            let (a, b) = data.subsets.sums(row);
            let (pa, pb) = (
                (1.0 - eps) * a + eps * (all - a),
                (1.0 - eps) * b + eps * (all - b),
            );
            total += (pa * pb - a * b).powi(2);
        }
        let want = total / 200.0;
        // Two f64 evaluations of the same 200-row mean, in different orders.
        assert!(
            (data.success_threshold - want).abs() < 1e-12 * want,
            "{want}"
        );
        // Every step's batch is new, from the interpolation range, with matching targets.
        let TrainingData::Stream(sampler) = &mut data.train else {
            panic!("fresh batches")
        };
        let (mut x1, mut y1, mut x2, mut y2) = (vec![], vec![], vec![], vec![]);
        sampler.sample(128, &mut x1, &mut y1);
        sampler.sample(128, &mut x2, &mut y2);
        assert_eq!((x1.len(), y1.len()), (128 * WIDTH, 128));
        assert_ne!(x1, x2);
        assert!(x1.iter().all(|&v| (1.0..2.0).contains(&v)));
        assert_eq!(y1, data.subsets.targets(Operation::Mul, &x1, WIDTH));
    }

    #[test]
    fn the_generator_is_uniform_and_deterministic() {
        let draw = |seed| {
            let mut g = Uniform::new(seed, (2.0, 6.0));
            let mut out = vec![];
            g.append(100_003, &mut out);
            out
        };
        let x = draw(1);
        assert_eq!(x, draw(1));
        assert_ne!(x, draw(2));
        assert!(x.iter().all(|&v| (2.0..6.0).contains(&v)));
        // 10⁵ draws of U[2, 6): mean 4 ± 1.15/√10⁵ = 0.004; variance 4/3 ± 0.006.
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 4.0).abs() < 0.02, "mean {mean}");
        assert!((var - 4.0 / 3.0).abs() < 0.03, "variance {var}");
    }

    /// Known answers from an independent implementation of the same generator: each lane of
    /// [`Uniform`] is xoshiro128+ (`rand_xoshiro::Xoshiro128Plus`) seeded with the words of two
    /// SplitMix64 draws (`rand_xoshiro::SplitMix64`, the last word made odd), the lanes' draws
    /// interleaved, each draw's top 23 bits a mantissa in [1, 2) mapped onto the range. Enough
    /// draws to cross several of `append`'s blocks, and one lane short of a round.
    #[test]
    fn the_generator_is_xoshiro128_plus_seeded_by_splitmix64() {
        use rand_xoshiro::rand_core::Rng;
        use rand_xoshiro::{SplitMix64, Xoshiro128Plus};
        let (seed, lo, hi) = (12_345, 2.0f32, 6.0f32);
        let mut splitmix = SplitMix64::seed_from_u64(seed ^ 0x6A09_E667_F3BC_C908);
        let mut lanes: Vec<Xoshiro128Plus> = (0..LANES)
            .map(|_| {
                let (s01, s23) = (splitmix.next_u64(), splitmix.next_u64());
                let words = [s01, s01 >> 32, s23, s23 >> 32 | 1].map(|w| w as u32);
                Xoshiro128Plus::from_seed(bytemuck::cast(words.map(u32::to_le)))
            })
            .collect();
        let mut drawn = Vec::new();
        Uniform::new(seed, (lo, hi)).append(1000 * LANES - 1, &mut drawn);
        for (i, &v) in drawn.iter().enumerate() {
            let bits = lanes[i % LANES].next_u32();
            let one_to_two = f32::from_bits((bits >> 9) | 0x3f80_0000);
            assert_eq!(v, lo + (one_to_two - 1.0) * (hi - lo), "draw {i}");
        }
    }

    #[test]
    fn invalid_specs_are_refused_by_field() {
        let bad = MadsenSpec {
            overlap_ratio: 2.0,
            ..MadsenSpec::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "MadsenSpec.overlap_ratio must be in [0, 1], got 2"
        );
    }
}
