//! The formula read-back of each model shape (see [`burn_nalu::formula`]).

use burn::tensor::Tensor;

use super::models::{Accumulator, Recurrent, Single};
use burn_nalu::ArithmeticUnit;
use burn_nalu::formula::{self, Discretize, Formula, FormulaError, SnapOptions};

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
        let ([rows, width], d) = (x.dims(), self.cell.d_input());
        let x = x.reshape([rows, width / d, d]);
        formula::extract_recurrent(&self.cell, &[&self.output], x, options)
    }
}

impl<U: ArithmeticUnit> Accumulator<U> {
    /// Recurrent models are not read back as formulas yet.
    pub(super) fn formula(&self, _: Tensor<2>, _: &SnapOptions) -> Result<Formula, FormulaError> {
        Err(FormulaError::Unsupported("Accumulator"))
    }
}
