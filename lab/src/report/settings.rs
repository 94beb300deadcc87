//! The settings a results directory records (`run.json`), and the check that a resumed run
//! trains what the directory began.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::ExperimentError;
use crate::protocol::TaskSettings;

/// The settings that decide the results of a run of many cells, as a results directory records
/// them (`run.json`): the task's, and the configuration of every cell, keyed `model/task` as the
/// command line names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The task's settings.
    pub protocol: TaskSettings,
    /// Each cell's configuration.
    pub configs: BTreeMap<String, TrainConfig>,
}

impl RunSettings {
    /// Whether a run with these settings may continue one made with `before`: the same task,
    /// and the same configuration for every cell both have (cells may be added). The error
    /// names the cell and the fields that differ.
    pub fn check_resume(&self, before: &RunSettings) -> Result<(), ExperimentError> {
        let json = |t: &TaskSettings| serde_json::to_string(t).unwrap_or_default();
        if self.protocol != before.protocol {
            return Err(ExperimentError::Resume(format!(
                "holds a run of another task ({} here, {} there)",
                json(&self.protocol),
                json(&before.protocol)
            )));
        }
        for (cell, config) in &self.configs {
            match before.configs.get(cell) {
                Some(old) if old != config => {
                    return Err(ExperimentError::Resume(format!(
                        "trained {cell} with other settings ({})",
                        differences(old, config).join("; ")
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `field: there → here` for each field of two configs that differs, as JSON writes them.
fn differences(there: &TrainConfig, here: &TrainConfig) -> Vec<String> {
    let object = |c: &TrainConfig| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (there, here) = (object(there), object(here));
    let fields = here.iter().filter(|(k, v)| there.get(*k) != Some(*v));
    fields
        .map(|(k, v)| {
            let old = there.get(k).map_or("absent".into(), ToString::to_string);
            format!("{k}: {old} there, {v} here")
        })
        .collect()
}
