//! The headline figure: per operation, this crate's best recipe and its single initialisation
//! beside the best unit Madsen & Johansen published, on their task.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::plots::draw_rates;
use super::stats::{TaskSummary, summarize};
use crate::error::ExperimentError;
use crate::madsen::{MADSEN_PUBLISHED, PublishedRate};
use crate::task::Operation;
use crate::train::RunResult;
use crate::write::write_file;

/// The results files (in `lab/results/`) of the README's headline figure,
/// `results/headline.svg`: Madsen & Johansen's recommended stacks at 100 seeds, their recipe's
/// NAU → NMU on `×` (one initialisation, without polish and snap), and the naive NPU from one
/// initialisation.
pub const HEADLINE_RESULTS: [&str; 7] = [
    "madsen-table-nau-100-seeds.csv",
    "madsen-recommended-mul-100-seeds.csv",
    "madsen-table-nau-nmu-mul.csv",
    "madsen-table-nau-nmu-square.csv",
    "madsen-recommended-sqrt-div.csv",
    "madsen-recommended-div-16-seeds100-199.csv",
    "madsen-beyond-naive-npu.csv",
];

/// The headline figure's title.
pub const HEADLINE_TITLE: &str = "Madsen & Johansen's static task: seeds learned of 100";

/// One operation of the headline: `(label, successes, runs)` of each of its three points.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadlineCell {
    /// The operation.
    pub op: Operation,
    /// This crate's recipe with the most seeds learned (formula read back, then successes).
    pub recipe: (String, usize, usize),
    /// The same stack from one initialisation, where the runs hold it: with the recipe's polish
    /// and snap for a best of N, without them for a recipe of one initialisation.
    pub plain: Option<(String, usize, usize)>,
    /// The published unit with the most successes on the operation.
    pub published: Option<(String, usize, usize)>,
}

/// The headline of `runs` (of Madsen & Johansen's task): per operation they hold, in the order
/// of [`Operation::ALL`], its best recipe, that stack's plain runs and the best published rate.
pub fn headline_cells(runs: &[RunResult]) -> Vec<HeadlineCell> {
    let summaries = summarize(runs);
    let rate = |s: &TaskSummary| s.learned.unwrap_or(s.successes) as f64 / s.runs.max(1) as f64;
    let point = |s: &TaskSummary| (s.model.clone(), s.learned.unwrap_or(s.successes), s.runs);
    Operation::ALL
        .iter()
        .filter_map(|&op| {
            let cell: Vec<&TaskSummary> = summaries.iter().filter(|s| s.task == op).collect();
            let best = cell
                .iter()
                .copied()
                .max_by(|a, b| rate(a).total_cmp(&rate(b)))?;
            let stack = best.model.split(',').next().unwrap_or_default();
            // Another cell of the same stack from one initialisation (the recipe's own where it
            // is one: then its plain runs, without polish and snap, where the results hold them).
            let one_init = |s: &&&TaskSummary| {
                s.model.split(',').next() == Some(stack) && !s.model.contains("best of")
            };
            let other = cell.iter().filter(|s| s.model != best.model).find(one_init);
            let plain = other.or(Some(&best).filter(one_init)).map(|s| point(s));
            // The first of the best, in the paper's order (NAU before NAC on `+`).
            let published = (MADSEN_PUBLISHED.iter().filter(|p| p.op == op))
                .fold(None, |best: Option<&PublishedRate>, p| match best {
                    Some(b) if b.successes >= p.successes => Some(b),
                    _ => Some(p),
                })
                .map(|p| (p.model.name().to_string(), p.successes, p.seeds));
            Some(HeadlineCell {
                op,
                recipe: point(best),
                plain,
                published,
            })
        })
        .collect()
}

/// The headline as a Markdown table.
pub fn headline_table(cells: &[HeadlineCell]) -> String {
    let mut out = String::from(
        "| Operation | This crate's recipe | Learned | One initialisation | Best published |\n\
         |---|---|---|---|---|\n",
    );
    let or_dash = |p: &Option<(String, usize, usize)>, named: bool| match p {
        Some((l, k, n)) if named => format!("{l}: {k}/{n}"),
        Some((_, k, n)) => format!("{k}/{n}"),
        None => "-".into(),
    };
    for c in cells {
        let (label, k, n) = &c.recipe;
        let _ = writeln!(
            out,
            "| {} | {label} | {k}/{n} | {} | {} |",
            c.op.formula(),
            or_dash(&c.plain, false),
            or_dash(&c.published, true)
        );
    }
    out
}

/// Draws the headline as SVG into `path` ([`write_file`]): per operation, the recipe (blue),
/// its single initialisation (light blue) and the best published unit (grey), each a rate with
/// its Wilson 95% interval, on one axis that a README's width shows whole.
pub fn plot_headline(
    path: &Path,
    title: &str,
    cells: &[HeadlineCell],
) -> Result<(), ExperimentError> {
    let mut svg = String::new();
    draw_headline(&mut svg, title, cells).map_err(|e| ExperimentError::format(path, e))?;
    write_file(path, svg.as_bytes())
}

/// The plot of [`plot_headline`], as SVG text.
pub(super) fn draw_headline(
    svg: &mut String,
    title: &str,
    cells: &[HeadlineCell],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (880, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = cells.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..105.0)?;
    let label = |x: &f64| {
        let i = x.round();
        match (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cells.len() {
            true => cells[i as usize].op.formula().to_string(),
            false => String::new(),
        }
    };
    chart
        .configure_mesh()
        .x_labels(cells.len().max(1))
        .x_label_formatter(&label)
        .x_label_style(("sans-serif", 18))
        .disable_x_mesh()
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("seeds learned (%), Wilson 95%")
        .draw()?;
    type Pick = fn(&HeadlineCell) -> Option<(usize, usize)>;
    let series: [(&str, f64, RGBColor, Pick); 3] = [
        ("this crate, recipe", -0.2, BLUE, |c| {
            Some((c.recipe.1, c.recipe.2))
        }),
        (
            "this crate, one initialisation",
            0.0,
            RGBColor(110, 170, 240),
            |c| c.plain.as_ref().map(|p| (p.1, p.2)),
        ),
        ("best published unit", 0.2, RGBColor(120, 120, 120), |c| {
            c.published.as_ref().map(|p| (p.1, p.2))
        }),
    ];
    for (name, offset, color, pick) in series {
        let points: Vec<(f64, (usize, usize))> = (cells.iter().enumerate())
            .filter_map(|(i, c)| pick(c).map(|r| (i as f64 + offset, r)))
            .collect();
        draw_rates(&mut chart, &points, color, 5, Some(name))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(90, 200))
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
