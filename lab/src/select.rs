//! What a protocol trains: its task, built with the settings a caller overrides, the models it
//! trains by default, and each model's recipe for an operation. The command line is a thin
//! client of these; a program of its own runs a protocol the same way.

use core::fmt;

use super::config::TrainConfig;
use super::error::ExperimentError;
use super::madsen::MadsenTask;
use super::mistry::MistryTask;
use super::protocol::{MadsenSpec, MistrySpec, Protocol, RecurrentSpec, Rows, SequentialSpec};
use super::recurrent::RecurrentTask;
use super::reference::ReferenceTask;
use super::sequential::SequentialTask;
use super::stacks::ModelKind;
use super::task::{Operation, Task};

/// The models to train: one stack with its protocol's recipe, each operation's recommended
/// stack and recipe, or every stack that reads the protocol's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// One stack, with the protocol's recipe for it.
    Stack(ModelKind),
    /// Each operation's recommended stack and recipe (the reference and Madsen protocols).
    Recommended,
    /// Every stack that reads the protocol's rows.
    All,
}

impl ModelChoice {
    /// The name the command line and the results give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stack(model) => model.name(),
            Self::Recommended => "recommended",
            Self::All => "all",
        }
    }
}

/// The task settings a caller overrides; `None` keeps the protocol's own. Each belongs to some
/// protocols only ([`TaskOptions::check`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskOptions {
    /// Madsen: the fraction of the inputs each sum covers.
    pub subset_ratio: Option<f64>,
    /// Madsen: the fraction of a sum's inputs the other sum shares.
    pub overlap_ratio: Option<f64>,
    /// Madsen: the range the training and validation inputs are drawn from.
    pub interpolation_range: Option<(f32, f32)>,
    /// Madsen: the range the extrapolation inputs are drawn from.
    pub extrapolation_range: Option<(f32, f32)>,
    /// Madsen, Mistry, recurrent and sequential: the rows of each evaluation split.
    pub eval_rows: Option<usize>,
    /// Mistry: the number of inputs.
    pub inputs: Option<usize>,
    /// Mistry: which of the nine input ranges.
    pub range: Option<usize>,
    /// Recurrent and sequential: the training sequences' length.
    pub time: Option<usize>,
    /// Recurrent and sequential: the extrapolation sequences' length.
    pub extrapolation_time: Option<usize>,
    /// Madsen: train without the early stop (a setting of the recipe, refused elsewhere).
    pub no_early_stop: bool,
    /// Madsen: the early stop's rule is given (a setting of the recipe, refused elsewhere).
    pub early_stop_rule: bool,
}

impl TaskOptions {
    /// Refuses a setting that `protocol` does not take, naming it as the command line does.
    pub fn check(&self, protocol: Protocol) -> Result<(), ExperimentError> {
        let given = [
            ("--subset-ratio", self.subset_ratio.is_some(), "madsen"),
            ("--overlap-ratio", self.overlap_ratio.is_some(), "madsen"),
            (
                "--interpolation-range",
                self.interpolation_range.is_some(),
                "madsen",
            ),
            (
                "--extrapolation-range",
                self.extrapolation_range.is_some(),
                "madsen",
            ),
            ("--no-early-stop", self.no_early_stop, "madsen"),
            ("--early-stop-rule", self.early_stop_rule, "madsen"),
            (
                "--eval-rows",
                self.eval_rows.is_some(),
                "madsen, mistry, recurrent or sequential",
            ),
            ("--inputs", self.inputs.is_some(), "mistry"),
            ("--range", self.range.is_some(), "mistry"),
            ("--time", self.time.is_some(), "recurrent or sequential"),
            (
                "--extrapolation-time",
                self.extrapolation_time.is_some(),
                "recurrent or sequential",
            ),
        ];
        let own = |protocols: &str| protocols.contains(protocol.name());
        match given
            .iter()
            .find(|(_, on, protocols)| *on && !own(protocols))
        {
            Some((name, _, protocols)) => Err(ExperimentError::Setting(format!(
                "{name} needs --protocol {protocols}"
            ))),
            None => Ok(()),
        }
    }
}

/// The task of `protocol` with `options` (checked first), or an error naming what was refused.
pub fn task(protocol: Protocol, options: &TaskOptions) -> Result<Box<dyn Task>, ExperimentError> {
    options.check(protocol)?;
    let o = options;
    let refused = |e: &dyn fmt::Display| {
        ExperimentError::Setting(format!("--protocol {}: {e}", protocol.name()))
    };
    let task: Box<dyn Task> = match protocol {
        Protocol::Reference => Box::new(ReferenceTask::default()),
        Protocol::Madsen => {
            let d = MadsenSpec::default();
            Box::new(
                MadsenTask::new(MadsenSpec {
                    subset_ratio: o.subset_ratio.unwrap_or(d.subset_ratio),
                    overlap_ratio: o.overlap_ratio.unwrap_or(d.overlap_ratio),
                    interpolation: o.interpolation_range.unwrap_or(d.interpolation),
                    extrapolation: o.extrapolation_range.unwrap_or(d.extrapolation),
                    eval_rows: o.eval_rows.unwrap_or(d.eval_rows),
                })
                .map_err(|e| refused(&e))?,
            )
        }
        Protocol::Recurrent => {
            let d = RecurrentSpec::default();
            Box::new(
                RecurrentTask::new(RecurrentSpec {
                    time: o.time.unwrap_or(d.time),
                    extrapolation_time: o.extrapolation_time.unwrap_or(d.extrapolation_time),
                    eval_rows: o.eval_rows.unwrap_or(d.eval_rows),
                    ..d
                })
                .map_err(|e| refused(&e))?,
            )
        }
        Protocol::Sequential => Box::new(
            SequentialTask::new(SequentialSpec {
                time: o.time,
                extrapolation_time: o.extrapolation_time,
                eval_rows: o.eval_rows.unwrap_or(SequentialSpec::default().eval_rows),
            })
            .map_err(|e| refused(&e))?,
        ),
        Protocol::Mistry => {
            let d = MistrySpec::default();
            Box::new(
                MistryTask::new(MistrySpec {
                    inputs: o.inputs.unwrap_or(d.inputs),
                    range: o.range.unwrap_or(d.range),
                    eval_rows: o.eval_rows.unwrap_or(d.eval_rows),
                })
                .map_err(|e| refused(&e))?,
            )
        }
    };
    Ok(task)
}

/// The operations and models to train on `protocol`: `tasks` (default: the protocol's
/// operations) and `models` (default: NALU, and the recommended stacks on the reference task;
/// the NALU recurrent model on the recurrent task; the NAU and NMU cells on the sequential
/// task), with [`ModelChoice::All`] expanded and repeats dropped.
pub fn selection(
    protocol: Protocol,
    tasks: &[Operation],
    models: &[ModelChoice],
) -> (Vec<Operation>, Vec<ModelChoice>) {
    let tasks = match tasks.is_empty() {
        true => protocol.operations().to_vec(),
        false => tasks.to_vec(),
    };
    let rows = protocol.rows();
    let mut models = models.to_vec();
    if models.is_empty() {
        models = match rows {
            Rows::Static => vec![ModelChoice::Stack(ModelKind::Nalu)],
            Rows::Sequence => vec![ModelChoice::Stack(ModelKind::NaluRnn)],
            Rows::Running => vec![
                ModelChoice::Stack(ModelKind::NauCell),
                ModelChoice::Stack(ModelKind::NmuCell),
            ],
        };
        if protocol == Protocol::Reference {
            models.push(ModelChoice::Recommended);
        }
    }
    let every = ModelKind::ALL.iter().filter(|m| m.rows() == rows);
    let mut expanded: Vec<ModelChoice> = models
        .into_iter()
        .flat_map(|c| match c {
            ModelChoice::All => every.clone().map(|&m| ModelChoice::Stack(m)).collect(),
            c => vec![c],
        })
        .collect();
    expanded.dedup();
    (tasks, expanded)
}

/// The recipe `protocol` trains `choice` with on `op` (before any override): the model's own
/// recipe for the protocol, or the operation's recommended stack and recipe. `mistry_inputs`:
/// the Mistry task's number of inputs (its default when `None`). Refuses
/// [`ModelChoice::Recommended`] on a protocol without recommendations.
pub fn recipe(
    protocol: Protocol,
    choice: ModelChoice,
    op: Operation,
    mistry_inputs: Option<usize>,
) -> Result<TrainConfig, ExperimentError> {
    let model = match choice {
        ModelChoice::Stack(model) => model,
        ModelChoice::Recommended => match protocol {
            Protocol::Reference => return Ok(TrainConfig::recommended(op)),
            Protocol::Madsen => return Ok(TrainConfig::madsen_recommended(op)),
            _ => {
                return Err(ExperimentError::Setting(
                    "--model recommended needs --protocol reference or madsen: its recipes are \
                     those tasks'"
                        .into(),
                ));
            }
        },
        ModelChoice::All => {
            return Err(ExperimentError::Setting(
                "--model all names several stacks: expand it with `selection` first".into(),
            ));
        }
    };
    Ok(match protocol {
        Protocol::Reference => TrainConfig::recipe(model, op),
        Protocol::Madsen => TrainConfig::madsen(model),
        Protocol::Recurrent => TrainConfig::recurrent(model),
        Protocol::Sequential => TrainConfig::sequential(model),
        Protocol::Mistry => TrainConfig::mistry(
            model,
            op,
            mistry_inputs.unwrap_or(MistrySpec::default().inputs),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_of_another_protocol_is_refused_by_name() {
        let options = TaskOptions {
            time: Some(5),
            ..TaskOptions::default()
        };
        let err = task(Protocol::Madsen, &options).err().unwrap().to_string();
        assert_eq!(err, "--time needs --protocol recurrent or sequential");
        assert!(task(Protocol::Recurrent, &options).is_ok());
    }

    #[test]
    fn all_expands_to_the_stacks_of_the_protocols_rows() {
        let (tasks, models) = selection(Protocol::Sequential, &[], &[ModelChoice::All]);
        assert_eq!(tasks, Protocol::Sequential.operations());
        assert!(!models.is_empty());
        for m in models {
            let ModelChoice::Stack(m) = m else {
                panic!("{m:?} not expanded")
            };
            assert_eq!(m.rows(), Rows::Running);
        }
    }

    #[test]
    fn recommended_is_refused_where_no_recipe_recommends() {
        let op = Operation::Add;
        let err = recipe(Protocol::Recurrent, ModelChoice::Recommended, op, None);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("--protocol reference or madsen")
        );
        let madsen = recipe(Protocol::Madsen, ModelChoice::Recommended, op, None).unwrap();
        assert_eq!(madsen.model, TrainConfig::madsen_recommended(op).model);
    }
}
