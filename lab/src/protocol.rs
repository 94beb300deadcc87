//! The task families of the experiments: their names and their settings, as results and
//! `run.json` record them.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use super::operation::Operation;
use burn_nalu::ConfigError;

/// A family of tasks ([`Task::protocol`](super::Task::protocol)): the name results record and
/// `--protocol` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The NALU paper's static task as the Keras reference ran it
    /// ([`ReferenceTask`](super::ReferenceTask)).
    Reference,
    /// Madsen & Johansen 2020's static task ([`MadsenTask`](super::MadsenTask)).
    Madsen,
    /// Mistry, Farrahi & Hare 2022's single-module task ([`MistryTask`](super::MistryTask)).
    Mistry,
    /// The NALU paper's recurrent task ([`RecurrentTask`](super::RecurrentTask)).
    Recurrent,
    /// Madsen & Johansen 2020's sequential arithmetic, digits given as numbers
    /// ([`SequentialTask`](super::SequentialTask)).
    Sequential,
}

impl Protocol {
    /// Every protocol, in the order the command line lists them.
    pub const ALL: [Protocol; 5] = [
        Protocol::Reference,
        Protocol::Madsen,
        Protocol::Mistry,
        Protocol::Recurrent,
        Protocol::Sequential,
    ];

    /// The name results and the command line use (`reference`, `madsen`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Reference => "reference",
            Protocol::Madsen => "madsen",
            Protocol::Mistry => "mistry",
            Protocol::Recurrent => "recurrent",
            Protocol::Sequential => "sequential",
        }
    }

    /// The operations the family's tasks have (all six but for the sequential task's running
    /// sums and products).
    pub fn operations(self) -> &'static [Operation] {
        match self {
            Protocol::Sequential => &super::SequentialTask::OPERATIONS,
            _ => &Operation::ALL,
        }
    }

    /// What a row of the family's data is, and so which models can read it.
    pub fn rows(self) -> Rows {
        match self {
            Protocol::Recurrent => Rows::Sequence,
            Protocol::Sequential => Rows::Running,
            _ => Rows::Static,
        }
    }
}

/// What a row of a task is and what its targets are: what a model must read and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// All inputs at once, one target.
    Static,
    /// A sequence of steps, one target after the last.
    Sequence,
    /// A sequence of steps, a target after every step.
    Running,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::names::parse_name(s, "protocol", &Protocol::ALL, |p| p.name())
    }
}

impl fmt::Display for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rows::Static => "whole rows",
            Rows::Sequence => "sequences with a target after the last step",
            Rows::Running => "sequences with a target after every step",
        })
    }
}

/// A task's settings ([`Task::settings`](super::Task::settings)): runs with different
/// settings are not comparable, and a resumed run refuses to mix them. Written as the settings'
/// fields with the protocol under `name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum TaskSettings {
    /// [`ReferenceTask`](super::ReferenceTask): rows per split.
    Reference {
        /// Rows in each split.
        rows: usize,
    },
    /// [`MadsenTask`](super::MadsenTask).
    Madsen(MadsenSpec),
    /// [`MistryTask`](super::MistryTask).
    Mistry(MistrySpec),
    /// [`RecurrentTask`](super::RecurrentTask).
    Recurrent(RecurrentSpec),
    /// [`SequentialTask`](super::SequentialTask).
    Sequential(SequentialSpec),
}

/// The settings of Madsen & Johansen's static task (their defaults by [`Default`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MadsenSpec {
    /// Size of each subset as a fraction of the 100 inputs, rounded down (0.25: 25 inputs).
    pub subset_ratio: f64,
    /// Fraction of a subset that `a` and `b` share, rounded down (0.5: 12 of 25).
    pub overlap_ratio: f64,
    /// Training and validation inputs are uniform in `[lo, hi)`.
    pub interpolation: (f32, f32),
    /// Extrapolation inputs are uniform in `[lo, hi)`.
    pub extrapolation: (f32, f32),
    /// Rows of the validation and of the extrapolation split.
    pub eval_rows: usize,
}

impl Default for MadsenSpec {
    /// Subsets of 25 inputs overlapping by 12, `U[1, 2)` and `U[2, 6)`, 10,000 rows each.
    fn default() -> Self {
        Self {
            subset_ratio: 0.25,
            overlap_ratio: 0.5,
            interpolation: (1.0, 2.0),
            extrapolation: (2.0, 6.0),
            eval_rows: 10_000,
        }
    }
}

/// The inputs per row of the static tasks (Trask et al.'s and Madsen & Johansen's).
pub(crate) const WIDTH: usize = 100;

impl MadsenSpec {
    /// `(subset size, overlap size)` for 100 inputs.
    pub fn sizes(&self) -> (usize, usize) {
        let size = (self.subset_ratio * WIDTH as f64).floor() as usize;
        (size, (self.overlap_ratio * size as f64).floor() as usize)
    }

    /// Checks the ratios, ranges and row count; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (size, overlap) = self.sizes();
        let range_ok = |(lo, hi): (f32, f32)| lo.is_finite() && hi.is_finite() && lo < hi;
        let refuse = |field, reason| Err(ConfigError::new("MadsenSpec", field, reason));
        if size == 0 || 2 * size - overlap > WIDTH {
            refuse(
                "subset_ratio",
                format!(
                    "must give two subsets that fit 100 inputs, got {}",
                    self.subset_ratio
                ),
            )
        } else if !(0.0..=1.0).contains(&self.overlap_ratio) {
            refuse(
                "overlap_ratio",
                format!("must be in [0, 1], got {}", self.overlap_ratio),
            )
        } else if !range_ok(self.interpolation) {
            refuse(
                "interpolation",
                format!("must have lo < hi, got {:?}", self.interpolation),
            )
        } else if !range_ok(self.extrapolation) {
            refuse(
                "extrapolation",
                format!("must have lo < hi, got {:?}", self.extrapolation),
            )
        } else {
            ConfigError::check_size("MadsenSpec", "eval_rows", self.eval_rows)
        }
    }
}

/// One interval, or the union of two of equal length, to draw inputs from uniformly.
pub type Ranges = &'static [(f32, f32)];

/// The nine input ranges of Mistry et al.'s division experiments, `(interpolation,
/// extrapolation)`: training and validation inputs from the first, test inputs from the second.
pub const MISTRY_RANGES: [(Ranges, Ranges); 9] = [
    (&[(-20.0, -10.0)], &[(-40.0, -20.0)]),
    (&[(-2.0, -1.0)], &[(-6.0, -2.0)]),
    (&[(-1.2, -1.1)], &[(-6.1, -1.2)]),
    (&[(-0.2, -0.1)], &[(-2.0, -0.2)]),
    (&[(-2.0, 2.0)], &[(-6.0, -2.0), (2.0, 6.0)]),
    (&[(0.1, 0.2)], &[(0.2, 2.0)]),
    (&[(1.0, 2.0)], &[(2.0, 6.0)]),
    (&[(1.1, 1.2)], &[(1.2, 6.0)]),
    (&[(10.0, 20.0)], &[(20.0, 40.0)]),
];

/// The settings of Mistry et al.'s single-module task (defaults by [`Default`]: 10 inputs,
/// `U[1, 2)` → `U[2, 6)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MistrySpec {
    /// Inputs per row: 2 (`a = x₀`, `b = x₁`) or more (`a`, `b` two adjacent inputs at a
    /// seeded offset, the others distractors; the authors ran 10).
    pub inputs: usize,
    /// Which of [`MISTRY_RANGES`] the inputs come from.
    pub range: usize,
    /// Rows of the validation and of the test split.
    pub eval_rows: usize,
}

impl Default for MistrySpec {
    fn default() -> Self {
        Self {
            inputs: 10,
            range: 6,
            eval_rows: 10_000,
        }
    }
}

impl MistrySpec {
    /// `(interpolation, extrapolation)` ranges.
    pub fn ranges(&self) -> (Ranges, Ranges) {
        MISTRY_RANGES[self.range]
    }

    /// Checks the input count, range index and row count; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.inputs < 2 {
            let reason = format!("must be at least 2 (a and b), got {}", self.inputs);
            return Err(ConfigError::new("MistrySpec", "inputs", reason));
        }
        if self.range >= MISTRY_RANGES.len() {
            let reason = format!("must be below {}, got {}", MISTRY_RANGES.len(), self.range);
            return Err(ConfigError::new("MistrySpec", "range", reason));
        }
        ConfigError::check_size("MistrySpec", "eval_rows", self.eval_rows)
    }
}

/// The settings of the recurrent task (defaults by [`Default`]: `stable-nalu`'s, with
/// extrapolation to 100 steps of doubled inputs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentSpec {
    /// Inputs per step (10).
    pub features: usize,
    /// Size of each subset as a fraction of the features, rounded down (0.25: 2 of 10).
    pub subset_ratio: f64,
    /// Fraction of a subset that `a` and `b` share, rounded down (0.5: 1 of 2).
    pub overlap_ratio: f64,
    /// Steps of a training or validation sequence (10).
    pub time: usize,
    /// Steps of an extrapolation sequence (100).
    pub extrapolation_time: usize,
    /// Training and validation inputs are uniform in `[lo, hi)` (`[0, 1)`).
    pub interpolation: (f32, f32),
    /// Extrapolation inputs are uniform in `[lo, hi)` (`[0, 2)`).
    pub extrapolation: (f32, f32),
    /// Sequences in the validation and in the extrapolation split (1,000).
    pub eval_rows: usize,
}

impl Default for RecurrentSpec {
    fn default() -> Self {
        Self {
            features: 10,
            subset_ratio: 0.25,
            overlap_ratio: 0.5,
            time: 10,
            extrapolation_time: 100,
            interpolation: (0.0, 1.0),
            extrapolation: (0.0, 2.0),
            eval_rows: 1000,
        }
    }
}

impl RecurrentSpec {
    /// `(subset size, overlap size)` of one step's features.
    pub fn sizes(&self) -> (usize, usize) {
        let size = (self.subset_ratio * self.features as f64).floor() as usize;
        (size, (self.overlap_ratio * size as f64).floor() as usize)
    }

    /// Checks the sizes, ratios and ranges; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field, v| ConfigError::check_size("RecurrentSpec", field, v);
        check("features", self.features)?;
        check("time", self.time)?;
        check("extrapolation_time", self.extrapolation_time)?;
        check("eval_rows", self.eval_rows)?;
        let (size, overlap) = self.sizes();
        if size == 0 || 2 * size - overlap > self.features || overlap > size {
            let reason = format!(
                "must give two subsets that fit {} features, got subset_ratio {} and \
                 overlap_ratio {}",
                self.features, self.subset_ratio, self.overlap_ratio
            );
            return Err(ConfigError::new("RecurrentSpec", "subset_ratio", reason));
        }
        for (field, (lo, hi)) in [
            ("interpolation", self.interpolation),
            ("extrapolation", self.extrapolation),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                let reason = format!("must have lo < hi, got {:?}", (lo, hi));
                return Err(ConfigError::new("RecurrentSpec", field, reason));
            }
        }
        Ok(())
    }
}

/// The settings of the sequential task ([`SequentialTask`](super::SequentialTask)); by
/// [`Default`], each operation's lengths as Madsen & Johansen ran it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequentialSpec {
    /// Steps of a training or validation sequence (`None`: 10 for sums, 2 for products).
    pub time: Option<usize>,
    /// Steps of an extrapolation sequence (`None`: 1,000 for sums, 20 for products).
    pub extrapolation_time: Option<usize>,
    /// Sequences in the validation and in the extrapolation split (1,000).
    pub eval_rows: usize,
}

impl Default for SequentialSpec {
    fn default() -> Self {
        Self {
            time: None,
            extrapolation_time: None,
            eval_rows: 1000,
        }
    }
}

impl SequentialSpec {
    /// `(training, extrapolation)` steps for `op`: the ones given, or Madsen & Johansen's.
    pub fn lengths(&self, op: Operation) -> (usize, usize) {
        let (time, extrapolation_time) = match op {
            Operation::Mul => (2, 20),
            _ => (10, 1000),
        };
        (
            self.time.unwrap_or(time),
            self.extrapolation_time.unwrap_or(extrapolation_time),
        )
    }

    /// The digits of `op`'s sequences, inclusive: 0 to 9 for sums, 1 to 9 for products (their
    /// `--mnist-digits 123456789`: a 0 would end every product).
    pub fn digits(op: Operation) -> (u8, u8) {
        match op {
            Operation::Mul => (1, 9),
            _ => (0, 9),
        }
    }

    /// Checks the lengths and the row count; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field, v| ConfigError::check_size("SequentialSpec", field, v);
        if let Some(time) = self.time {
            check("time", time)?;
        }
        if let Some(time) = self.extrapolation_time {
            check("extrapolation_time", time)?;
        }
        check("eval_rows", self.eval_rows)
    }
}
