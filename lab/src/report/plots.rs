//! The figures: loss curves per evaluation and success rates beside the published ones, as SVG.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::stats::{Z_95, distinct, wilson_interval};
use crate::error::ExperimentError;
use crate::train::Evaluation;
use crate::write::write_file;

/// Plots train, validation and extrapolation MSE per evaluation on a log scale, as SVG.
///
/// Values that are zero or not finite cannot sit on a log axis: they are left out. Written with
/// [`write_file`].
pub fn plot_history(
    path: &Path,
    title: &str,
    history: &[Evaluation],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_history(&mut svg, title, history).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_history`], as SVG text.
fn draw_history(
    svg: &mut String,
    title: &str,
    history: &[Evaluation],
) -> Result<(), Box<dyn std::error::Error>> {
    type Pick = fn(&Evaluation) -> f64;
    let series: [(&str, Pick, RGBColor); 3] = [
        ("train", |m| m.train_mse, BLUE),
        ("validation", |m| m.valid_mse, GREEN),
        ("extrapolation", |m| m.extrapolation_mse, RED),
    ];
    let points = |pick: Pick| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|m| (m.step as f64, pick(m)))
            .filter(|&(_, v)| v.is_finite() && v > 0.0)
            .collect()
    };
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| points(s.1))
        .map(|p| p.1)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(1.0);
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let last_step = history.last().map_or(1, |m| m.step.max(1)) as f64;

    let root = SVGBackend::with_string(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_step, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("MSE")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    for (name, pick, color) in series {
        chart
            .draw_series(LineSeries::new(points(pick), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One cell of [`plot_success_rates`]: a model on an operation, this crate's runs and, where
/// there is one, the published rate beside them.
#[derive(Clone, Debug)]
pub struct RateBar {
    /// The panel the cell is drawn in (its operation, `"a + b"`); one panel per group.
    pub group: String,
    /// The cell's name under its pair of points in the panel (`"nau"`).
    pub label: String,
    /// This crate's successful runs.
    pub successes: usize,
    /// This crate's runs.
    pub runs: usize,
    /// `(successes, seeds)` published for the same cell.
    pub published: Option<(usize, usize)>,
}

/// Plots success rates with their Wilson 95% intervals as the papers plot them: one panel per
/// group (operation), its cells side by side, this crate's runs (blue) and the published rate
/// (grey, where there is one), as SVG. Written with [`write_file`].
pub fn plot_success_rates(
    path: &Path,
    title: &str,
    bars: &[RateBar],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_success_rates(&mut svg, title, bars).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_success_rates`], as SVG text.
pub(super) fn draw_success_rates(
    svg: &mut String,
    title: &str,
    bars: &[RateBar],
) -> Result<(), Box<dyn std::error::Error>> {
    let groups = distinct(bars.iter().map(|b| b.group.as_str()));
    let panels: Vec<Vec<&RateBar>> = groups
        .iter()
        .map(|&g| bars.iter().filter(|b| b.group == g).collect())
        .collect();
    // Up to three panels a row, each as wide as the widest needs; panels of more than four
    // cells one a row, so that a page's width shows them (Madsen & Johansen's whole table: 1,140
    // pixels for 13 cells, where three a row made 4,260).
    let widest = panels.iter().map(Vec::len).max().unwrap_or(1).max(2) as u32;
    let (columns, cell, height) = match widest > 4 {
        true => (1, 80, 280),
        false => (panels.len().clamp(1, 3), 110, 300),
    };
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (
        columns as u32 * (100 + cell * widest),
        40 + height * rows as u32,
    );
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let areas = root.split_evenly((rows, columns));
    for (k, ((panel, area), group)) in panels.iter().zip(&areas).zip(&groups).enumerate() {
        draw_panel(area, group, panel, k == 0)?;
    }
    root.present()?;
    Ok(())
}

/// One panel of [`draw_success_rates`]: its cells' rates, the legend on the first panel only.
fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    group: &str,
    bars: &[&RateBar],
    legend: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(group, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..100.0)?;
    let label = |x: &f64| {
        let i = x.round();
        let on_cell = (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < bars.len();
        if on_cell {
            short_label(&bars[i as usize].label)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&label)
        .disable_x_mesh()
        .y_labels(6)
        .y_desc("success (%), Wilson 95%")
        .draw()?;
    let series: [(&str, f64, RGBColor); 2] = [
        ("this crate", -0.12, BLUE),
        ("published", 0.12, RGBColor(120, 120, 120)),
    ];
    for (k, (name, offset, color)) in series.into_iter().enumerate() {
        let points: Vec<(f64, (usize, usize))> = bars
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let rate = if k == 0 {
                    Some((b.successes, b.runs))
                } else {
                    b.published
                };
                rate.map(|r| (i as f64 + offset, r))
            })
            .collect();
        draw_rates(&mut chart, &points, color, 4, legend.then_some(name))?;
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// The chart both success figures draw on: cells along x, rates in percent along y.
pub(super) type RateChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws each `(x, (successes, runs))` of `points` as its rate, a dot of `radius`, with its
/// Wilson 95% interval, in `color`; in the legend as `name` where one is given.
pub(super) fn draw_rates(
    chart: &mut RateChart,
    points: &[(f64, (usize, usize))],
    color: RGBColor,
    radius: i32,
    name: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let interval = |&(x, (k, n)): &(f64, (usize, usize))| {
        let (lo, hi) = wilson_interval(k, n, Z_95);
        PathElement::new(
            vec![(x, 100.0 * lo), (x, 100.0 * hi)],
            color.stroke_width(2),
        )
    };
    let rate = |&(x, (k, n)): &(f64, (usize, usize))| {
        Circle::new(
            (x, 100.0 * k as f64 / n.max(1) as f64),
            radius,
            color.filled(),
        )
    };
    chart.draw_series(points.iter().map(interval))?;
    let drawn = chart.draw_series(points.iter().map(rate))?;
    if let Some(name) = name {
        drawn
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), radius, color.filled()));
    }
    Ok(())
}

/// A cell's label as a figure shows it: the stack, and `×N` for the best of N initialisations
/// (`naive-npu, best of 8, polished` → `naive-npu ×8`); the table beside it has the whole label.
fn short_label(label: &str) -> String {
    let mut parts = label.split(", ");
    let stack = parts.next().unwrap_or_default();
    match parts.find_map(|p| p.strip_prefix("best of ")) {
        Some(n) => format!("{stack} ×{n}"),
        None => stack.to_string(),
    }
}

/// One model's successes on one operation, range by range, for [`plot_range_rates`].
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    /// The panel: the operation.
    pub group: String,
    /// The model.
    pub label: String,
    /// `(successes, runs)` per range, in the order of the ranges.
    pub rates: Vec<(usize, usize)>,
}

/// Plots success rates per input range as Mistry et al.'s Primer does for its single-module
/// task: one panel per operation, the ranges along x, each model a line of its rates with
/// their Wilson 95% intervals, as SVG. Written with [`write_file`].
pub fn plot_range_rates(
    path: &Path,
    title: &str,
    series: &[RangeSeries],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_range_rates(&mut svg, title, series).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_range_rates`], as SVG text: two panels a row.
fn draw_range_rates(
    svg: &mut String,
    title: &str,
    series: &[RangeSeries],
) -> Result<(), Box<dyn std::error::Error>> {
    let groups = distinct(series.iter().map(|s| s.group.as_str()));
    let rows = groups.len().div_ceil(2).max(1);
    let size = (1200, 40 + 380 * rows as u32);
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    for (area, group) in root.split_evenly((rows, 2)).iter().zip(&groups) {
        let panel: Vec<&RangeSeries> = series.iter().filter(|s| s.group == *group).collect();
        draw_range_panel(area, group, &panel)?;
    }
    root.present()?;
    Ok(())
}

/// One operation's panel of [`draw_range_rates`]: a line per model, its legend on the right.
fn draw_range_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    group: &str,
    series: &[&RangeSeries],
) -> Result<(), Box<dyn std::error::Error>> {
    let ranges = series.iter().map(|s| s.rates.len()).max().unwrap_or(1);
    let mut chart = ChartBuilder::on(area)
        .caption(group, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..ranges as f64 + 2.5, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_labels(ranges + 3)
        .x_label_formatter(&|x: &f64| match *x >= 0.0 && *x < ranges as f64 {
            true => format!("{}", x.round()),
            false => String::new(),
        })
        .x_desc("input range (0 to 8)")
        .y_desc("success (%), Wilson 95%")
        .disable_x_mesh()
        .draw()?;
    let n = series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let color = RGBColor(color.0, color.1, color.2);
        // Side by side within a range, so that equal rates stay apart.
        let offset = 0.5 * ((k as f64 + 0.5) / n - 0.5);
        let points: Vec<(f64, (usize, usize))> = (s.rates.iter().enumerate())
            .filter(|(_, r)| r.1 > 0)
            .map(|(i, &r)| (i as f64 + offset, r))
            .collect();
        let line = points
            .iter()
            .map(|&(x, (k, n))| (x, 100.0 * k as f64 / n as f64));
        chart.draw_series(LineSeries::new(line, color.stroke_width(1)))?;
        draw_rates(&mut chart, &points, color, 3, Some(&s.label))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// When a run of the single-module task counts as a success, for [`range_series`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeCriterion {
    /// As the run recorded it: test MSE below [`MISTRY_THRESHOLD`](crate::MISTRY_THRESHOLD)
    /// (1e-5, their division paper's).
    Recorded,
    /// Test MSE below the Primer's ε-threshold of the run's operation and range
    /// ([`primer_threshold`](crate::primer_threshold)), on a task of `inputs` inputs.
    Primer {
        /// Inputs per row of the task the runs trained on.
        inputs: usize,
    },
}

impl RangeCriterion {
    /// Whether `run`, of the range at index `range`, succeeded by this criterion (for the
    /// operations the Primer does not run, as recorded).
    pub fn success(&self, run: &crate::RunResult, range: usize) -> bool {
        match *self {
            Self::Recorded => run.success,
            Self::Primer { inputs } => match crate::primer_threshold(run.task, inputs, range) {
                Some(threshold) => run.extrapolation_mse < threshold,
                None => run.success,
            },
        }
    }

    /// The title of [`plot_range_rates`]'s figure by this criterion.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Recorded => "Single-module task: success (extrapolation MSE < 1e-5) per range",
            Self::Primer { .. } => {
                "Single-module task: success (extrapolation MSE < the Primer's ε-threshold, ε = 1e-4) per range"
            }
        }
    }
}

/// Each operation's and model's successes by `criterion` per range, from the runs of each
/// range in order.
pub fn range_series(
    per_range: &[Vec<crate::RunResult>],
    criterion: RangeCriterion,
) -> Vec<RangeSeries> {
    let all = per_range.iter().flatten();
    let mut cells: Vec<(crate::Operation, String)> =
        distinct(all.map(|r| (r.task, r.model.to_string())));
    cells.sort_by_key(|(op, _)| crate::Operation::ALL.iter().position(|o| o == op));
    (cells.into_iter())
        .map(|(op, model)| RangeSeries {
            group: op.formula().to_string(),
            rates: (per_range.iter().enumerate())
                .map(|(k, runs)| {
                    let of = runs
                        .iter()
                        .filter(|r| r.task == op && r.model.to_string() == model);
                    of.fold((0, 0), |(s, n), r| {
                        (s + criterion.success(r, k) as usize, n + 1)
                    })
                })
                .collect(),
            label: model,
        })
        .collect()
}

/// Each operation's and model's successes over all ranges, by the recorded 1e-5 and by the
/// Primer's ε-threshold (tasks of `inputs` inputs), as a markdown table.
pub fn range_totals(per_range: &[Vec<crate::RunResult>], inputs: usize) -> String {
    let recorded = range_series(per_range, RangeCriterion::Recorded);
    let primer = range_series(per_range, RangeCriterion::Primer { inputs });
    let mut table = String::from(
        "| Operation | Model | Success (MSE < 1e-5) | Success (MSE < ε-threshold) |\n|---|---|---|---|\n",
    );
    for (r, p) in recorded.iter().zip(&primer) {
        let total = |s: &RangeSeries| s.rates.iter().fold((0, 0), |(a, b), (k, n)| (a + k, b + n));
        let ((k, n), (kp, _)) = (total(r), total(p));
        let line = format!("| {} | {} | {k}/{n} | {kp}/{n} |\n", r.group, r.label);
        table.push_str(&line);
    }
    table
}
