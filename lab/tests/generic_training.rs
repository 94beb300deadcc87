//! The one training loop trains any [`Model`] on task rows of any shape: a single unit on the
//! reference task, and a recurrent cell on sequences (rows of `time` steps with a target per
//! step, extrapolated to longer sequences), through the same `train` and `train_population`.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_nalu::formula::{Formula, FormulaError, SnapOptions, extract};
use burn_nalu::{ArithmeticUnit, Nau, NauConfig};
use burn_nalu_lab::Model;
use burn_nalu_lab::{
    Budget, ModelKind, Operation, Protocol, ReferenceTask, Split, Subsets, Task, TaskData,
    TrainConfig, TrainedRun, TrainingData, train, train_population,
};

/// One NAU, `[.., width] → [.., 1]`: the smallest model of the static tasks.
#[derive(Module, Debug)]
struct SingleNau {
    nau: Nau,
}

impl ArithmeticUnit for SingleNau {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        self.nau.forward_members(input, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        self.nau.regularizer_members(members)
    }

    fn clamp_members(self) -> Self {
        Self {
            nau: self.nau.clamp_members(),
        }
    }
}

impl Model for SingleNau {
    fn init(_: &TrainConfig, width: usize, device: &Device) -> Self {
        Self {
            nau: NauConfig::new(width, 1).init(device),
        }
    }

    fn formula(&self, x: Tensor<2>, options: &SnapOptions) -> Result<Formula, FormulaError> {
        extract(&[&self.nau], x, options)
    }
}

/// A NAU alone learns `a + b` of the reference task (the sum of all 100 inputs) through the
/// experiments' loop, and reads back as such.
#[test]
fn a_single_unit_trains_through_the_loop_and_reads_back() {
    let data = ReferenceTask::default().data(Operation::Add, 0);
    let config = TrainConfig {
        budget: Budget::Epochs(150),
        ..TrainConfig::recipe(ModelKind::Nau, Operation::Add)
    };
    let run: TrainedRun<SingleNau> = train(data, &config, &Device::default(), &mut |_| {}).unwrap();
    let r = &run.result;
    assert_eq!(r.steps, 150 * 16);
    assert!(r.success, "{r:?}");
    assert_eq!(r.formula.as_deref(), Some("a + b"), "{r:?}");
}

/// `h_t = NAU([x_t, h_{t−1}])` from `h_0 = 0`, every `h_t` an output: a running-sum cell over
/// rows of `time` steps of one feature (`[.., time] → [.., time]`, any number of steps).
#[derive(Module, Debug)]
struct SumCell {
    nau: Nau,
}

impl ArithmeticUnit for SumCell {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let time = input.dims()[D - 1];
        let mut h = input.clone().narrow(D - 1, 0, 1).zeros_like();
        let mut states = Vec::with_capacity(time);
        for t in 0..time {
            let x_t = input.clone().narrow(D - 1, t, 1);
            h = self
                .nau
                .forward_members(Tensor::cat(vec![x_t, h], D - 1), members);
            states.push(h.clone());
        }
        Tensor::cat(states, D - 1)
    }

    fn clamp_members(self) -> Self {
        Self {
            nau: self.nau.clamp_members(),
        }
    }
}

impl Model for SumCell {
    fn init(_: &TrainConfig, _: usize, device: &Device) -> Self {
        Self {
            nau: NauConfig::new(2, 1).init(device),
        }
    }

    /// A cell's formula is per step; reading a whole sequence back is not this test's.
    fn formula(&self, _: Tensor<2>, _: &SnapOptions) -> Result<Formula, FormulaError> {
        Err(FormulaError::Unsupported("SumCell"))
    }
}

/// Rows of `time` inputs uniform in `[0, scale)` and their running sums, from `seed`.
fn sequences(rows: usize, time: usize, scale: f32, seed: u64) -> Split {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * scale
    };
    let x: Vec<f32> = (0..rows * time).map(|_| uniform()).collect();
    let y = x
        .chunks(time)
        .flat_map(|row| {
            row.iter().scan(0.0f32, |sum, &v| {
                *sum += v;
                Some(*sum)
            })
        })
        .collect();
    Split {
        x,
        y,
        width: time,
        outputs: time,
    }
}

/// A running sum trained on sequences of 4 steps of `U[0, 1)` and extrapolated to 12 steps of
/// `U[0, 4)`: the same loop, with rows of `time` values and a target per step.
fn running_sum(seed: u64) -> TaskData {
    let extrapolation = sequences(200, 12, 4.0, seed + 2);
    TaskData {
        // The protocol only labels results: the sequence task of this test has none of its own.
        protocol: Protocol::Reference,
        op: Operation::Add,
        seed,
        train: TrainingData::Rows(sequences(256, 4, 1.0, seed)),
        valid: sequences(200, 4, 1.0, seed + 1),
        valid_threshold: 1e-6,
        success_threshold: 1e-2,
        extrapolation,
        subsets: Subsets {
            a: vec![0],
            b: vec![1],
        },
        step_width: 1,
    }
}

/// Two seeds of the cell train as one population: each reaches `h_t = x_t + h_{t−1}` (both
/// weights 1) and extrapolates to sequences three times longer of inputs four times larger.
#[test]
fn a_recurrent_cell_trains_on_sequences_through_the_same_loop() {
    let config = TrainConfig {
        batch_size: 32,
        budget: Budget::Epochs(60),
        regularizer: None,
        ..TrainConfig::recipe(ModelKind::Nau, Operation::Add)
    };
    let data = vec![running_sum(0), running_sum(1)];
    let runs: Vec<TrainedRun<SumCell>> =
        train_population(data, &config, &Device::default(), &mut |_| {}).unwrap();
    for run in &runs {
        let r = &run.result;
        assert_eq!((r.steps, r.population), (60 * 8, 2));
        let w = run
            .model
            .nau
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(w.iter().all(|w| (w - 1.0).abs() < 1e-2), "{w:?}");
        assert!(r.success, "{r:?}");
        assert!(r.normalized_extrapolation_error < 1e-2, "{r:?}");
    }
}
