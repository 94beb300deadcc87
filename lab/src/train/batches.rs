//! Each run's training batches: shuffled epochs over fixed rows, or a task's sampler.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::checkpoint::{Reader, Writer};
use crate::config::{Budget, TrainConfig};
use crate::error::ExperimentError;
use crate::task::{BatchSampler, Split, TaskData, TrainingData};

/// Refuses runs that cannot train as one population: different input or target widths, or
/// different numbers of fixed training rows (their epochs would not line up).
pub(super) fn check_shapes(data: &[TaskData]) -> Result<(), ExperimentError> {
    let shape = |d: &TaskData| (d.width(), d.outputs());
    let rows = |d: &TaskData| d.train_rows().map(Split::rows);
    let first = &data[0];
    if let Some(d) = data.iter().find(|d| shape(d) != shape(first)) {
        return Err(ExperimentError::Data(format!(
            "runs of one population share their row shape: seed {} has (width, outputs) {:?}, \
             seed {} {:?}",
            first.seed,
            shape(first),
            d.seed,
            shape(d)
        )));
    }
    if let Some(d) = data.iter().find(|d| rows(d) != rows(first)) {
        return Err(ExperimentError::Data(format!(
            "runs of one population have the same number of training rows, or none: seed {} \
             has {:?}, seed {} {:?}",
            first.seed,
            rows(first),
            d.seed,
            rows(d)
        )));
    }
    Ok(())
}

/// Each run's training batches, gathered into one `[runs, batch, width]` input and its
/// `[runs, batch, outputs]` targets per step.
pub(super) struct Batches {
    sources: Vec<Source>,
    batch_size: usize,
    width: usize,
    outputs: usize,
}

/// One run's batches: shuffled epochs over fixed rows, or a sampler.
// One per run, made once: the size of the row variant's generator costs nothing.
#[allow(clippy::large_enum_variant)]
enum Source {
    Rows {
        split: Split,
        order: Vec<usize>,
        next: usize,
        rng: StdRng,
        /// The run's seed, and the shuffles drawn so far: a checkpoint replays them, as the
        /// generator's state cannot be read.
        seed: u64,
        shuffles: u64,
    },
    Stream(Box<dyn BatchSampler>),
}

impl Batches {
    /// The batches of `data` (whose training sources move here; the rest is returned), which
    /// [`check_shapes`] has accepted.
    pub(super) fn new(data: Vec<TaskData>, batch_size: usize) -> (Self, Vec<TaskData>) {
        let (width, outputs) = (data[0].width(), data[0].outputs());
        let mut sources = Vec::with_capacity(data.len());
        let rest = data
            .into_iter()
            .map(|mut d| {
                let empty = TrainingData::Rows(Split {
                    x: Vec::new(),
                    y: Vec::new(),
                    width,
                    outputs,
                });
                sources.push(match std::mem::replace(&mut d.train, empty) {
                    TrainingData::Rows(split) => Source::Rows {
                        order: (0..split.rows()).collect(),
                        next: split.rows(),
                        rng: rows_rng(d.seed),
                        seed: d.seed,
                        shuffles: 0,
                        split,
                    },
                    TrainingData::Stream(sampler) => Source::Stream(sampler),
                });
                d
            })
            .collect();
        let batches = Self {
            sources,
            batch_size,
            width,
            outputs,
        };
        (batches, rest)
    }

    /// Keeps the sources of the runs where `keep` is set.
    pub(super) fn retain(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.sources
            .retain(|_| *flags.next().expect("one flag per run"));
    }

    /// Writes each source's place (a training checkpoint's part).
    pub(super) fn save(&self, w: &mut Writer) -> Result<(), String> {
        w.u64(self.sources.len() as u64);
        self.sources.iter().try_for_each(|s| s.save(w))
    }

    /// Returns the sources (fresh, and retained as the saved ones were) to the saved places.
    pub(super) fn load(&mut self, r: &mut Reader) -> Result<(), String> {
        if r.usize()? != self.sources.len() {
            return Err("the saved batches are of another number of runs".into());
        }
        self.sources.iter_mut().try_for_each(|s| s.load(r))
    }

    /// Steps per epoch over fixed rows, `None` for fresh batches.
    fn steps_per_epoch(&self) -> Option<usize> {
        self.sources[0].rows().map(|r| r.div_ceil(self.batch_size))
    }

    /// `(steps, evaluate every)` of `config` on these batches.
    pub(super) fn schedule(&self, config: &TrainConfig) -> (usize, usize) {
        let per_epoch = self.steps_per_epoch();
        let steps = match (config.budget, per_epoch) {
            (Budget::Steps(n), _) => n,
            (Budget::Epochs(n), Some(per)) => n * per,
            (Budget::Epochs(_), None) => unreachable!("refused by TrainConfig::validate_for"),
        };
        let every = config.eval_every.or(per_epoch).unwrap_or(1000);
        (steps, every)
    }

    /// The next batch of every run, `([runs, batch, width], [runs, batch, outputs])`. Over
    /// fixed rows an epoch's last batch may be smaller (the same size for every run).
    pub(super) fn next(&mut self, device: &Device) -> (Tensor<3>, Tensor<3>) {
        let (s, w, o) = (self.sources.len(), self.width, self.outputs);
        let rows = self.sources[0].next_len(self.batch_size);
        let (mut x, mut y) = (vec![0.0; s * rows * w], vec![0.0; s * rows * o]);
        // Each run draws from its own generator, so the runs can fill their blocks on rayon's
        // threads in any order and draw what they draw in order.
        if rayon::current_num_threads() > 1 && s > 1 {
            let blocks = x.par_chunks_mut(rows * w).zip(y.par_chunks_mut(rows * o));
            (self.sources.par_iter_mut().zip(blocks))
                .for_each(|(source, (x, y))| source.fill(rows, x, y));
        } else {
            let blocks = x.chunks_mut(rows * w).zip(y.chunks_mut(rows * o));
            for (source, (x, y)) in self.sources.iter_mut().zip(blocks) {
                source.fill(rows, x, y);
            }
        }
        (
            Tensor::from_data(TensorData::new(x, [s, rows, w]), device),
            Tensor::from_data(TensorData::new(y, [s, rows, o]), device),
        )
    }

    /// Each run's next batch, drawn into a buffer of its own and handed to `f` with the run's
    /// index, for the host step, which trains a run on its batch while that is in cache. Runs
    /// go one after another, or on rayon's threads; the results come back in run order.
    #[cfg(feature = "flex")]
    pub(super) fn each_run<T: Send>(
        &mut self,
        f: impl Fn(usize, &[f32], &[f32]) -> T + Sync,
    ) -> Vec<T> {
        let (w, o) = (self.width, self.outputs);
        let rows = self.sources[0].next_len(self.batch_size);
        let buffers = || (vec![0.0; rows * w], vec![0.0; rows * o]);
        let run = |(x, y): &mut (Vec<f32>, Vec<f32>), (k, source): (usize, &mut Source)| {
            source.fill(rows, x, y);
            f(k, x, y)
        };
        if rayon::current_num_threads() > 1 && self.sources.len() > 1 {
            let sources = self.sources.par_iter_mut().enumerate();
            sources.map_init(buffers, run).collect()
        } else {
            let mut buffers = buffers();
            let sources = self.sources.iter_mut().enumerate();
            sources.map(|s| run(&mut buffers, s)).collect()
        }
    }
}

/// The generator of a run's epochs over fixed rows.
fn rows_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x5EED_5EED_5EED_5EED)
}

impl Source {
    /// Writes where the source is (a training checkpoint's part).
    fn save(&self, w: &mut Writer) -> Result<(), String> {
        match self {
            Source::Rows { next, shuffles, .. } => {
                w.bool(false);
                w.u64s(&[*next as u64, *shuffles]);
            }
            Source::Stream(sampler) => {
                let state = sampler
                    .state()
                    .ok_or("a run's batch sampler has no checkpoint")?;
                w.bool(true);
                w.u64s(&state.into_iter().map(u64::from).collect::<Vec<_>>());
            }
        }
        Ok(())
    }

    /// Returns a fresh source of the same run to where [`Source::save`] left it.
    fn load(&mut self, r: &mut Reader) -> Result<(), String> {
        let (stream, words) = (r.bool()?, r.u64s()?);
        match (self, stream) {
            (
                Source::Rows {
                    split,
                    order,
                    next,
                    rng,
                    seed,
                    shuffles,
                },
                false,
            ) => {
                let [at, drawn] = words[..] else {
                    return Err("a row source's state is two numbers".into());
                };
                (*order, *rng) = ((0..split.rows()).collect(), rows_rng(*seed));
                (0..drawn).for_each(|_| order.shuffle(rng));
                (*next, *shuffles) = (at as usize, drawn);
                Ok(())
            }
            (Source::Stream(sampler), true) => {
                let words: Result<Vec<u32>, _> = words.into_iter().map(u32::try_from).collect();
                sampler.set_state(&words.map_err(|e| e.to_string())?)
            }
            _ => Err("the saved batches are of another kind of task".into()),
        }
    }

    fn rows(&self) -> Option<usize> {
        match self {
            Source::Rows { split, .. } => Some(split.rows()),
            Source::Stream(_) => None,
        }
    }

    /// The size of the next batch: `batch`, or what is left of the epoch.
    fn next_len(&self, batch: usize) -> usize {
        match self {
            Source::Rows { split, next, .. } if *next < split.rows() => {
                batch.min(split.rows() - next)
            }
            _ => batch,
        }
    }

    /// Fills `x` and `y` with one batch of `rows` rows; a new epoch starts with a fresh
    /// shuffle of the rows.
    fn fill(&mut self, rows: usize, x: &mut [f32], y: &mut [f32]) {
        match self {
            Source::Rows {
                split,
                order,
                next,
                rng,
                shuffles,
                ..
            } => {
                if *next >= split.rows() {
                    order.shuffle(rng);
                    (*next, *shuffles) = (0, *shuffles + 1);
                }
                let (w, o) = (split.width, split.outputs);
                let batch = order[*next..*next + rows].iter();
                for ((&row, x), y) in batch.zip(x.chunks_exact_mut(w)).zip(y.chunks_exact_mut(o)) {
                    x.copy_from_slice(&split.x[row * w..(row + 1) * w]);
                    y.copy_from_slice(&split.y[row * o..(row + 1) * o]);
                }
                *next += rows;
            }
            Source::Stream(sampler) => sampler.sample_into(rows, x, y),
        }
    }
}
