//! The formula read-back of each model shape (see [`burn_nalu::formula`]).

use burn::tensor::Tensor;

use super::models::{Accumulator, Recurrent, Single};
use burn_nalu::RecurrentCell;
use burn_nalu::formula::{self, Discretize, Formula, FormulaError, FormulaLayer, SnapOptions};

impl<U: Discretize> Single<U> {
    /// The formula of the unit.
    pub(super) fn formula(
        &self,
        x: Tensor<2>,
        options: &SnapOptions,
    ) -> Result<Formula, FormulaError> {
        formula::extract(&[&self.unit], x, options)
    }
}

impl<C: Discretize, O: Discretize> Recurrent<C, O> {
    /// The formula on the last state ([`formula::extract_recurrent`]), over `x` (`[rows,
    /// time·d_input]`): its inputs are the features summed over every step.
    pub(super) fn formula(
        &self,
        x: Tensor<2>,
        options: &SnapOptions,
    ) -> Result<Formula, FormulaError> {
        on_sequences(&self.cell, &[&self.output], x, options)
    }
}

impl<U: Discretize> Accumulator<U> {
    /// The formula of the cell's one state ([`formula::extract_recurrent`] with no layer on
    /// top), over `x` (`[rows, time·d_input]`): the running sum it keeps, read after every step.
    pub(super) fn formula(
        &self,
        x: Tensor<2>,
        options: &SnapOptions,
    ) -> Result<Formula, FormulaError> {
        on_sequences(&self.cell, &[], x, options)
    }
}

/// [`formula::extract_recurrent`] on the lab's flat rows, `[rows, time·d_input]`.
fn on_sequences<U: Discretize>(
    cell: &RecurrentCell<U>,
    layers: &[&dyn FormulaLayer],
    x: Tensor<2>,
    options: &SnapOptions,
) -> Result<Formula, FormulaError> {
    let ([rows, width], d) = (x.dims(), cell.d_input());
    formula::extract_recurrent(cell, layers, x.reshape([rows, width / d, d]), options)
}
