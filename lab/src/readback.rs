//! The learned formula of a trained model, checked on the extrapolation set.

use burn::tensor::Device;

use super::model::Model;
use super::task::TaskData;
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
        let snapped = first_output(&formula, &split.x, split.width, data.step_width);
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

/// The formula's first output on each row of `width` values, read (as a sequence model's
/// formula reads them) as its `step_width` features summed over the row's steps in f64: the
/// row itself for a static task, whose one step is the whole row.
fn first_output(formula: &Formula, x: &[f32], width: usize, step_width: usize) -> Vec<f64> {
    let sums = |row: &[f32]| {
        let mut sums = vec![0.0f64; step_width];
        for step in row.chunks(step_width) {
            sums.iter_mut().zip(step).for_each(|(s, &v)| *s += v as f64);
        }
        sums
    };
    x.chunks(width)
        .map(|row| formula.outputs[0].eval(&sums(row)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_nalu::formula::Expr;

    /// `x0 − 2·x1` on a sequence row reads each feature summed over the steps; on a static row
    /// (one step the whole row) the row itself. Small integers: exact in f64.
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
        let x = [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0,
        ];
        assert_eq!(first_output(&formula, &x, 6, 2), [-15.0, -9.0]);
        assert_eq!(first_output(&formula, &x[..4], 2, 2), [-3.0, -5.0]);
    }
}
