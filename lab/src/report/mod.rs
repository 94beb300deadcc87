//! Reports: the results table, per-task summaries over seeds, the table beside Madsen & Johansen's,
//! JSON, CSV, loss curves and success-rate plots.
//!
//! JSON and CSV come from one flat struct ([`RunResult`](crate::RunResult)), the CSV through the `csv` crate, so
//! that a formula or message holding commas or quotes stays one field. Every file is written
//! whole to a temporary file beside it and renamed over it ([`write_file`]): a run killed at
//! any instant leaves the old file or the new one, never a torn one.

//!
//! - [`stats`](self): per-task summaries over seeds ([`summarize`], [`wilson_interval`]).
//! - tables: the text tables ([`summary_table`], [`comparison_table`], ...).
//! - files: JSON and CSV of the runs, weights ([`write_csv`], [`read_csv`], [`read_pooled`]).
//! - settings: what a results directory records ([`RunSettings`]).
//! - plots: loss curves and success-rate figures ([`plot_history`], [`plot_success_rates`]);
//!   headline: the README's figure, per operation the best recipe beside the best published
//!   unit ([`headline_cells`], [`plot_headline`]).
//! - summaries: the summary tables of committed results files, written as Markdown files
//!   ([`write_summaries`]).

mod files;
mod headline;
mod plots;
mod settings;
mod stats;
mod summaries;
mod tables;
#[cfg(test)]
mod tests;

pub use crate::write::write_file;
pub use files::*;
pub use headline::*;
pub use plots::*;
pub use settings::*;
pub use stats::*;
pub use summaries::*;
pub use tables::*;
