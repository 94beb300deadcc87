//! The learned formula of a trained model, checked on the extrapolation set.

use burn::tensor::Device;

use super::model::Model;
use super::task::{Split, TaskData};
use burn_nalu::formula::{Formula, FormulaError, SnapOptions};

/// What [`Model::formula`] makes of a trained model, with default [`SnapOptions`].
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Readback {
    /// The formula in terms of `a` and `b` (the task's input groups), when the weights are
    /// discrete enough to claim one.
    pub formula: Option<String>,
    /// Why there is no formula, otherwise.
    pub formula_error: Option<String>,
    /// `max min(|w|, |1 − |w||)` over the weights (absent for units the formula module
    /// cannot read).
    pub sparsity_error: Option<f64>,
    /// MSE between the snapped formula and the trained network on the extrapolation set.
    pub formula_mse_vs_network: Option<f64>,
    /// MSE between the snapped formula and the extrapolation targets.
    pub formula_mse_vs_targets: Option<f64>,
}

impl Readback {
    /// Extracts and checks the formula of `model` on `data`'s extrapolation split.
    pub(crate) fn new<M: Model>(model: &M, data: &TaskData, device: &Device) -> Self {
        let split = &data.extrapolation;
        let (x, _) = split.tensors(device);
        let formula = match model.formula(x.clone(), &SnapOptions::default()) {
            Ok(formula) => formula,
            Err(err) => {
                let sparsity_error = match &err {
                    FormulaError::NotDiscrete { sparsity_error, .. } => Some(*sparsity_error),
                    FormulaError::Unsupported(_) => None,
                };
                return Self {
                    formula_error: Some(err.to_string()),
                    sparsity_error,
                    ..Self::default()
                };
            }
        };
        let network = model.forward_members(x, 1).into_data().convert::<f64>();
        let network = network.as_slice::<f64>().expect("f64 after convert");
        let snapped = formula_outputs(&formula, split, data.step_width);
        let mse = |other: &mut dyn Iterator<Item = f64>| {
            snapped
                .iter()
                .zip(other)
                .map(|(s, o)| (s - o).powi(2))
                .sum::<f64>()
                / snapped.len() as f64
        };
        Self {
            formula: Some(formula.render(&data.subsets.naming())),
            formula_error: None,
            sparsity_error: Some(formula.sparsity_error),
            formula_mse_vs_network: Some(mse(&mut network.iter().copied())),
            formula_mse_vs_targets: Some(mse(&mut split.y.iter().map(|&y| y as f64))),
        }
    }
}

/// The formula's first output for each target of `split`, in f64: on a static row, the row;
/// on a sequence read at its end, each of its `step_width` features summed over the steps; on a
/// sequence read after every step (a target a step), the sums up to each step.
fn formula_outputs(formula: &Formula, split: &Split, step_width: usize) -> Vec<f64> {
    let every_step = split.outputs > 1 && split.outputs * step_width == split.width;
    let eval = |sums: &[f64]| formula.outputs[0].eval(sums);
    let mut out = Vec::with_capacity(split.y.len());
    for row in split.x.chunks(split.width) {
        let mut sums = vec![0.0f64; step_width];
        for step in row.chunks(step_width) {
            sums.iter_mut().zip(step).for_each(|(s, &v)| *s += v as f64);
            if every_step {
                out.push(eval(&sums));
            }
        }
        if !every_step {
            out.push(eval(&sums));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_nalu::formula::Expr;

    /// `x0 − 2·x1` on a sequence row reads each feature summed over the steps (after every
    /// step when there is a target a step); on a static row (one step the whole row) the row
    /// itself. Small integers: exact in f64.
    #[test]
    fn a_sequence_formula_reads_the_features_summed_over_the_steps() {
        let formula = Formula {
            outputs: vec![Expr::weighted_sum([
                (1, Expr::input(0)),
                (-2, Expr::input(1)),
            ])],
            sparsity_error: 0.0,
        };
        // Two rows of three steps of two features: sums (9, 12) and (−3, 3).
        let x = vec![
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0,
        ];
        let split = |width, outputs| {
            let y = vec![0.0; x.len() / width * outputs];
            Split::new(x.clone(), y, width, outputs).unwrap()
        };
        assert_eq!(formula_outputs(&formula, &split(6, 1), 2), [-15.0, -9.0]);
        let every_step = [-3.0, -8.0, -15.0, -3.0, -6.0, -9.0];
        assert_eq!(formula_outputs(&formula, &split(6, 3), 2), every_step);
        let static_rows = [-3.0, -5.0, -7.0, -3.0, -3.0, -3.0];
        assert_eq!(formula_outputs(&formula, &split(2, 1), 2), static_rows);
    }
}
