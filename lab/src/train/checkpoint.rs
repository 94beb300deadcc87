//! A population's whole training state mid-run, so that a population longer than a process
//! lives on: [`Trainer::checkpoint`] after an evaluation, [`Trainer::resume`] in another
//! process, which then trains exactly as the first would have gone on.
//!
//! The file is this crate's own little-endian format (weights as f64, exact for f32): a magic,
//! what the population is (config, task, seeds), the trainer's state, and an FNV-1a checksum of
//! all that, so that a cut or corrupted file is refused rather than trained on. A checkpoint is
//! taken only right after an evaluation, where nothing is pending: the device's divergence
//! watch has been read into the runs, and the stall rule has been applied.

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::Trainer;
use super::watch::Watch;
use crate::config::TrainConfig;
use crate::error::ExperimentError;
use crate::model::Model;
use crate::task::TaskData;
use burn_nalu::internals::{values, with_values};
use burn_nalu::optim::OptimizerState;

/// The first bytes of a checkpoint, with the format's version.
const MAGIC: &[u8; 8] = b"BNALUCK1";

impl<M: Model> Trainer<M> {
    /// The population's training state, to continue it with [`Trainer::resume`]; call it after
    /// a [`step`](Self::step) that returned its progress (an evaluation step).
    ///
    /// # Errors
    /// If a run trains on a sampler without a state ([`BatchSampler::state`](
    /// crate::BatchSampler::state)).
    pub fn checkpoint(&self) -> Result<Vec<u8>, ExperimentError> {
        let mut w = Writer(MAGIC.to_vec());
        w.str(&identity(&self.data, &self.config));
        w.u64(self.step as u64);
        w.f64(self.step_seconds);
        w.f64(self.started.elapsed().as_secs_f64());
        w.u64s(&self.members.iter().map(|&r| r as u64).collect::<Vec<_>>());
        write_values(&mut w, &self.model);
        write_values(&mut w, &self.best);
        for dropped in &self.dropped {
            w.bool(dropped.is_some());
            if let Some(model) = dropped {
                write_values(&mut w, model);
            }
        }
        write_optimizer(&mut w, &self.optim.export(&self.model));
        self.batches.save(&mut w).map_err(ExperimentError::Resume)?;
        for run in &self.runs {
            run.save(&mut w);
        }
        let sum = fnv1a(&w.0);
        w.u64(sum);
        Ok(w.0)
    }

    /// The trainer [`checkpoint`](Self::checkpoint) saved, for the same `data` and `config`:
    /// it goes on as the saved one would have (iNALU restarts and the sNMU's noise included:
    /// each run draws them from its own seed).
    ///
    /// # Errors
    /// As [`Trainer::new`], and [`ExperimentError::Resume`] when `bytes` is not a whole
    /// checkpoint or is one of another population (other settings, task or seeds).
    pub fn resume(
        data: Vec<TaskData>,
        config: &TrainConfig,
        device: &Device,
        bytes: &[u8],
    ) -> Result<Self, ExperimentError> {
        let refuse = |why: String| ExperimentError::Resume(format!("checkpoint: {why}"));
        let body = checked_body(bytes).map_err(refuse)?;
        let mut r = Reader { bytes: body, at: 0 };
        let saved = r.str().map_err(refuse)?;
        let mut trainer = Self::new(data, config, device)?;
        let here = identity(&trainer.data, config);
        if saved != here {
            return Err(refuse(difference(&saved, &here)));
        }
        trainer.restore(&mut r).map_err(refuse)?;
        Ok(trainer)
    }

    /// Reads the state after the identity, into a trainer fresh from [`Trainer::new`].
    fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        self.step = r.usize()?;
        self.step_seconds = r.f64()?;
        let elapsed = Duration::from_secs_f64(r.f64()?.max(0.0));
        self.started = Instant::now()
            .checked_sub(elapsed)
            .unwrap_or_else(Instant::now);
        let total = self.runs.len();
        let members: Vec<usize> = r.u64s()?.into_iter().map(|m| m as usize).collect();
        if members.is_empty()
            || members.windows(2).any(|p| p[0] >= p[1])
            || members[members.len() - 1] >= total
        {
            return Err(format!(
                "members {members:?} are not runs of a population of {total}"
            ));
        }
        let keep: Vec<bool> = (0..total).map(|k| members.contains(&k)).collect();
        let fresh = self.best.clone();
        self.model = read_values(r, self.model.clone().retain(&keep))?;
        self.best = read_values(r, self.best.clone().retain(&keep))?;
        for (k, dropped) in self.dropped.iter_mut().enumerate() {
            *dropped = match r.bool()? {
                true => Some(read_values(r, fresh.member(k))?),
                false => None,
            };
        }
        self.optim = self.config.optimizer();
        self.optim.import(&self.model, &read_optimizer(r)?)?;
        self.watch = Watch::new(&self.train_device, members.len());
        self.eval.retain(&keep);
        self.batches.retain(&keep);
        self.batches.load(r)?;
        for run in &mut self.runs {
            run.load(r)?;
        }
        self.members = members;
        if r.at != r.bytes.len() {
            return Err(format!("{} bytes after the state", r.bytes.len() - r.at));
        }
        Ok(())
    }
}

/// What a checkpoint is of, as one line of text: the task, each run's seed (after the
/// initialisations per seed are expanded), a hash of all its evaluation rows and the config
/// (`data` is a trainer's, never empty). The checkpoints of e1f644d on have this line: a change
/// of it refuses them.
fn identity(data: &[TaskData], config: &TrainConfig) -> String {
    let config = serde_json::to_string(config).expect("a config serialises");
    let seeds: Vec<u64> = data.iter().map(|d| d.seed).collect();
    let splits = data.iter().flat_map(|d| [&d.valid, &d.extrapolation]);
    let values = splits.flat_map(|s| [&s.x, &s.y]);
    let rows = values.fold(0, |h, v| fnv1a_from(h, bytemuck::cast_slice(v)));
    let first = &data[0];
    format!(
        "{} {} seeds {seeds:?} rows {rows:016x} config {config}",
        first.protocol, first.op
    )
}

/// The first part in which two [`identity`] lines differ, named.
fn difference(saved: &str, here: &str) -> String {
    const PARTS: [(&str, &str); 4] = [
        ("task", ""),
        ("seeds", " seeds "),
        ("evaluation rows (hash)", " rows "),
        ("settings", " config "),
    ];
    // Each line cut at the parts' markers, in order.
    let split = |mut line: &str| -> Vec<String> {
        let mut parts = Vec::new();
        for (_, marker) in &PARTS[1..] {
            let (head, tail) = line.split_once(marker).unwrap_or((line, ""));
            parts.push(head.to_owned());
            line = tail;
        }
        parts.push(line.to_owned());
        parts
    };
    let (saved, here) = (split(saved), split(here));
    let differs = (0..PARTS.len()).find(|&k| saved[k] != here[k]).unwrap_or(0);
    format!(
        "it is of another population: its {} {}, not {}",
        PARTS[differs].0, saved[differs], here[differs]
    )
}

/// The body of a checkpoint after its magic, once its length and checksum agree.
fn checked_body(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a burn-nalu training checkpoint (or of another version)".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
    if fnv1a(body) != sum {
        return Err("its checksum does not match: the file is cut short or corrupt".into());
    }
    Ok(&body[MAGIC.len()..])
}

/// The 64-bit FNV-1a hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a from `h` on.
fn fnv1a_from(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Every float parameter's values (f64) with its dtype.
fn write_values<M: Module>(w: &mut Writer, module: &M) {
    let params = values(module);
    w.u64(params.len() as u64);
    for p in params {
        w.bool(p.dtype() == DType::F64);
        let data = p.into_data().convert::<f64>();
        w.f64s(&data.try_to_vec::<f64>().expect("float parameters"));
    }
}

/// `module` with the values [`write_values`] wrote, which must fit its parameters.
fn read_values<M: Module>(r: &mut Reader, module: M) -> Result<M, String> {
    let params = values(&module);
    if r.usize()? != params.len() {
        return Err("the saved weights are of another model".into());
    }
    let mut read = Vec::with_capacity(params.len());
    for p in params {
        let (f64_saved, v) = (r.bool()?, r.f64s()?);
        let dtype = p.dtype();
        if v.len() != p.dims()[0] || f64_saved != (dtype == DType::F64) {
            return Err(format!(
                "saved weights of {} values do not fit a parameter of {} ({dtype:?})",
                v.len(),
                p.dims()[0]
            ));
        }
        let data = TensorData::new(v, [p.dims()[0]]).convert_dtype(dtype);
        read.push(Tensor::<1>::from_data(data, &p.device()));
    }
    Ok(with_values(module, read))
}

fn write_optimizer(w: &mut Writer, state: &OptimizerState) {
    w.u64(state.steps as u64);
    w.u64(state.params.len() as u64);
    for slots in &state.params {
        w.bool(slots.is_some());
        if let Some(slots) = slots {
            w.u64(slots.len() as u64);
            slots.iter().for_each(|slot| w.f64s(slot));
        }
    }
}

fn read_optimizer(r: &mut Reader) -> Result<OptimizerState, String> {
    let steps = i32::try_from(r.u64()?).map_err(|e| e.to_string())?;
    let mut params = Vec::new();
    for _ in 0..r.len()? {
        let slots = match r.bool()? {
            true => Some((0..r.len()?).map(|_| r.f64s()).collect::<Result<_, _>>()?),
            false => None,
        };
        params.push(slots);
    }
    Ok(OptimizerState { steps, params })
}

/// Appends a checkpoint's values.
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub(super) fn bool(&mut self, v: bool) {
        self.0.push(v as u8);
    }

    pub(super) fn opt(&mut self, v: Option<usize>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0) as u64);
    }

    pub(super) fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|&x| self.u64(x));
    }

    pub(super) fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|&x| self.f64(x));
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads a checkpoint's values back; every read past the end is an `Err`.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("the state ends early")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(super) fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|e| e.to_string())
    }

    pub(super) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }

    pub(super) fn bool(&mut self) -> Result<bool, String> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{b} where a flag was expected")),
        }
    }

    pub(super) fn opt(&mut self) -> Result<Option<usize>, String> {
        let (some, v) = (self.bool()?, self.usize()?);
        Ok(some.then_some(v))
    }

    /// A length, checked against what is left (8 bytes per value) before anything is allocated.
    pub(super) fn len(&mut self) -> Result<usize, String> {
        let n = self.usize()?;
        match n
            .checked_mul(8)
            .is_some_and(|b| b <= self.bytes.len() - self.at)
        {
            true => Ok(n),
            false => Err("a length beyond the end of the state".into()),
        }
    }

    pub(super) fn u64s(&mut self) -> Result<Vec<u64>, String> {
        (0..self.len()?).map(|_| self.u64()).collect()
    }

    pub(super) fn f64s(&mut self) -> Result<Vec<f64>, String> {
        (0..self.len()?).map(|_| self.f64()).collect()
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.usize()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Checkpointing, TrainedRun, train_population_checkpointed};
    use crate::{BatchSampler, TrainingData};
    use crate::{Budget, MadsenSpec, MadsenTask, ModelKind, Operation, ReferenceTask, Task};

    /// Steps `trainer` to step `until` (or its end); at evaluation step `at` it stops run `run`
    /// by hand, and the population drops it (as an early stop would).
    fn advance(trainer: &mut Trainer, until: usize, (run, at): (usize, usize)) {
        while !trainer.is_done() && trainer.step < until {
            if trainer.step().is_some() && trainer.step == at {
                trainer.runs[run].stop(at);
                trainer.compact();
            }
        }
    }

    /// Everything a finished run leaves, but its timings, as text (NaN equals NaN there), and
    /// its weights' bits.
    fn outcome(runs: Vec<TrainedRun>) -> Vec<(String, String, Vec<u64>)> {
        let bits = |run: &TrainedRun| {
            let params = values(&run.model)
                .into_iter()
                .map(|p| p.into_data().convert::<f64>());
            let all = params.flat_map(|d| d.try_to_vec::<f64>().expect("floats"));
            all.map(f64::to_bits).collect()
        };
        runs.into_iter()
            .map(|run| {
                let mut r = run.result.clone();
                (r.wall_seconds, r.steps_per_second) = (0.0, 0.0);
                (format!("{r:?}"), format!("{:?}", run.history), bits(&run))
            })
            .collect()
    }

    /// Trains `data` to the end in one go, and again with a checkpoint at step `at` taken up
    /// by a new trainer: the same runs, bit for bit. Run 1 is stopped at step `stop` first, so
    /// the checkpoint holds a dropped run's weights too.
    fn resumed_equals_uninterrupted(
        data: Vec<TaskData>,
        config: &TrainConfig,
        stop: usize,
        at: usize,
    ) -> Vec<u8> {
        let device = Device::default();
        let mut whole = Trainer::new(data.clone(), config, &device).unwrap();
        advance(&mut whole, usize::MAX, (1, stop));
        let mut first = Trainer::new(data.clone(), config, &device).unwrap();
        advance(&mut first, at, (1, stop));
        assert_eq!(first.step, at);
        assert!(!first.members.contains(&1), "run 1 was dropped");
        let bytes = first.checkpoint().unwrap();
        drop(first);
        let mut second = Trainer::resume(data, config, &device, &bytes).unwrap();
        advance(&mut second, usize::MAX, (1, stop));
        assert_eq!(outcome(second.finish()), outcome(whole.finish()));
        bytes
    }

    fn madsen() -> (Vec<TaskData>, TrainConfig) {
        let task = MadsenTask::default();
        let data = (0..4).map(|seed| task.data(Operation::Mul, seed)).collect();
        let config = TrainConfig {
            budget: Budget::Steps(120),
            eval_every: Some(20),
            ..TrainConfig::madsen(ModelKind::NauNmu)
        };
        (data, config)
    }

    /// Fresh batches (the sampler's state), Adam's moments and step count, the best and the
    /// dropped checkpoints and every run's record survive a checkpoint.
    #[test]
    fn a_resumed_madsen_population_trains_as_the_uninterrupted_one() {
        let (data, config) = madsen();
        resumed_equals_uninterrupted(data, &config, 40, 60);
    }

    /// Epochs over fixed rows (replayed shuffles, the place in the epoch) and RMSProp's state
    /// survive a checkpoint taken mid-way through training.
    #[test]
    fn a_resumed_reference_population_trains_as_the_uninterrupted_one() {
        let task = ReferenceTask::default();
        let data: Vec<TaskData> = (0..3).map(|seed| task.data(Operation::Add, seed)).collect();
        let config = TrainConfig {
            budget: Budget::Epochs(5),
            ..TrainConfig::reference(Operation::Add)
        };
        let per_epoch = data[0]
            .train_rows()
            .unwrap()
            .rows()
            .div_ceil(config.batch_size);
        resumed_equals_uninterrupted(data, &config, per_epoch, 3 * per_epoch);
    }

    /// A sampler without a state cannot be checkpointed: refused before any training.
    #[test]
    fn a_population_without_a_checkpointable_sampler_is_refused_up_front() {
        struct Stateless(Box<dyn BatchSampler>);
        impl BatchSampler for Stateless {
            fn sample(&mut self, rows: usize, x: &mut Vec<f32>, y: &mut Vec<f32>) {
                self.0.sample(rows, x, y)
            }
            fn boxed_clone(&self) -> Box<dyn BatchSampler> {
                Box::new(Stateless(self.0.boxed_clone()))
            }
        }
        let (data, config) = madsen();
        let data = (data.into_iter())
            .map(|d| match d.train.clone() {
                TrainingData::Stream(s) => TaskData {
                    train: TrainingData::Stream(Box::new(Stateless(s))),
                    ..d
                },
                TrainingData::Rows(_) => unreachable!("Madsen's task samples"),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpointing {
            path: dir.path().join("population.checkpoint"),
            every: Duration::ZERO,
        };
        let mut evaluations = 0;
        let got = train_population_checkpointed::<crate::LabModel>(
            data,
            &config,
            &Device::default(),
            &mut |_| evaluations += 1,
            &checkpoint,
        );
        match got {
            Err(ExperimentError::Resume(why)) => assert!(why.contains("sampler"), "{why}"),
            other => panic!("not refused: {:?}", other.map(|runs| runs.len())),
        }
        assert_eq!(evaluations, 0, "refused before training");
        assert!(!checkpoint.path.exists());
    }

    /// A checkpoint that is cut, corrupted, or of other seeds or settings is refused with a
    /// reason, never trained on.
    #[test]
    fn a_damaged_or_foreign_checkpoint_is_refused() {
        let (data, config) = madsen();
        let device = Device::default();
        let mut trainer = Trainer::<crate::LabModel>::new(data.clone(), &config, &device).unwrap();
        advance(&mut trainer, 20, (0, usize::MAX));
        let bytes = trainer.checkpoint().unwrap();
        let refused =
            |bytes: &[u8], data: Vec<TaskData>, config: &TrainConfig| {
                match Trainer::<crate::LabModel>::resume(data, config, &device, bytes) {
                    Err(ExperimentError::Resume(why)) => why,
                    Err(e) => panic!("another error: {e}"),
                    Ok(_) => panic!("a bad checkpoint was taken up"),
                }
            };
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert!(refused(&flipped, data.clone(), &config).contains("checksum"));
        let cut = &bytes[..bytes.len() - 100];
        assert!(refused(cut, data.clone(), &config).contains("checksum"));
        assert!(refused(b"not one", data.clone(), &config).contains("not a burn-nalu"));
        let others = data
            .iter()
            .map(|d| TaskData {
                seed: d.seed + 10,
                ..d.clone()
            })
            .collect();
        let why = refused(&bytes, others, &config);
        assert!(
            why.contains("its seeds [0, 1, 2, 3], not [10, 11, 12, 13]"),
            "{why}"
        );
        let wider = MadsenTask::new(MadsenSpec {
            extrapolation: (2.0, 8.0),
            ..MadsenSpec::default()
        })
        .unwrap();
        let other_rows = (0..4)
            .map(|seed| wider.data(Operation::Mul, seed))
            .collect();
        let why = refused(&bytes, other_rows, &config);
        assert!(
            why.contains("another population: its evaluation rows (hash)"),
            "{why}"
        );
        let slower = TrainConfig {
            lr: config.lr / 2.0,
            ..config.clone()
        };
        let why = refused(&bytes, data, &slower);
        assert!(why.contains("another population: its settings {"), "{why}");
    }
}
