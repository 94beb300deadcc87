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

impl<C: ArithmeticUnit, O: ArithmeticUnit> Recurrent<C, O> {
    /// Recurrent models are not read back as formulas yet.
    pub(super) fn formula(&self, _: Tensor<2>, _: &SnapOptions) -> Result<Formula, FormulaError> {
        Err(FormulaError::Unsupported("Recurrent"))
    }
}

impl<U: ArithmeticUnit> Accumulator<U> {
    /// Recurrent models are not read back as formulas yet.
    pub(super) fn formula(&self, _: Tensor<2>, _: &SnapOptions) -> Result<Formula, FormulaError> {
        Err(FormulaError::Unsupported("Accumulator"))
    }
}
