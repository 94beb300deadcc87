//! The task families of the experiments: their names and their settings, as results and
//! `run.json` record them.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

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
}

impl Protocol {
    /// Every protocol, in the order the command line lists them.
    pub const ALL: [Protocol; 2] = [Protocol::Reference, Protocol::Madsen];

    /// The name results and the command line use (`reference`, `madsen`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Reference => "reference",
            Protocol::Madsen => "madsen",
        }
    }
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
