//! Rows of inputs and targets: a user's data as the recipes read it.

use burn::tensor::{Device, Tensor, TensorData};

use super::RecipeError;
use crate::ArithmeticUnit;

/// Rows of inputs and targets, row-major in f32.
///
/// A row is one example, flattened: `width` input values and `outputs` target values. The
/// recipes ([`fit`](super::fit)) train on one set of rows, choose on another (validation) and
/// report on any other. [`Rows::new`] refuses data a fit would silently get wrong; the fields
/// are public for code that builds rows it knows to be sound.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Row-major inputs, `rows × width`.
    pub x: Vec<f32>,
    /// Row-major targets, `rows × outputs`.
    pub y: Vec<f32>,
    /// Input values per row.
    pub width: usize,
    /// Target values per row.
    pub outputs: usize,
}

impl Rows {
    /// Rows of `width` inputs and `outputs` targets, checked: at least one row, `x` and `y`
    /// holding whole rows of the same count, every value finite.
    ///
    /// # Errors
    ///
    /// [`RecipeError::Data`] saying what is wrong: a width of zero, a length that is not whole
    /// rows, different row counts in `x` and `y`, no rows, or the first value that is NaN or
    /// infinite (its row and column).
    pub fn new(
        x: Vec<f32>,
        y: Vec<f32>,
        width: usize,
        outputs: usize,
    ) -> Result<Self, RecipeError> {
        let rows = Self {
            x,
            y,
            width,
            outputs,
        };
        rows.check()?;
        Ok(rows)
    }

    /// What [`Rows::new`] checks, for rows built from their fields.
    ///
    /// # Errors
    ///
    /// As [`Rows::new`].
    pub fn check(&self) -> Result<(), RecipeError> {
        let bad = |why: String| Err(RecipeError::Data(why));
        let (width, outputs) = (self.width, self.outputs);
        if width == 0 || outputs == 0 {
            return bad(format!(
                "rows need at least one input and one target, got width {width} and {outputs} outputs"
            ));
        }
        if !self.x.len().is_multiple_of(width) {
            return bad(format!(
                "{} input values are not whole rows of width {width}",
                self.x.len()
            ));
        }
        if !self.y.len().is_multiple_of(outputs) {
            return bad(format!(
                "{} target values are not whole rows of {outputs} outputs",
                self.y.len()
            ));
        }
        if self.x.len() / width != self.rows() {
            return bad(format!(
                "{} rows of inputs but {} rows of targets",
                self.x.len() / width,
                self.rows()
            ));
        }
        if self.rows() == 0 {
            return bad("no rows".into());
        }
        for (what, values, per_row) in [("input", &self.x, width), ("target", &self.y, outputs)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                let (v, row, column) = (values[i], i / per_row, i % per_row);
                return bad(format!(
                    "{what} {v} in row {row}, column {column}: values must be finite"
                ));
            }
        }
        Ok(())
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.y.len() / self.outputs
    }

    /// `(x, y)` as tensors of shapes `[rows, width]` and `[rows, outputs]`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let rows = self.rows();
        (
            Tensor::from_data(TensorData::new(self.x.clone(), [rows, self.width]), device),
            Tensor::from_data(
                TensorData::new(self.y.clone(), [rows, self.outputs]),
                device,
            ),
        )
    }

    /// The population variance of the targets.
    pub fn target_variance(&self) -> f64 {
        let n = self.y.len() as f64;
        let mean = self.y.iter().map(|&v| v as f64).sum::<f64>() / n;
        let squares: f64 = self.y.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        squares / n
    }

    /// The mean squared error of `model` on the rows: its f32 outputs' squared errors summed on
    /// the host in f64, in row order, so that the number does not depend on a backend's
    /// summation order.
    pub fn mse<U: ArithmeticUnit>(&self, model: &U, device: &Device) -> f64 {
        let (x, _) = self.tensors(device);
        let pred = model.forward_members(x, 1).into_data().convert::<f64>();
        mean_squared_error(pred.as_slice::<f64>().expect("f64 after convert"), &self.y)
    }
}

/// `Σ (p − t)² / n` in f64, in row order.
pub fn mean_squared_error(pred: &[f64], targets: &[f32]) -> f64 {
    let total: f64 = (pred.iter().zip(targets))
        .map(|(p, &t)| (p - t as f64).powi(2))
        .sum();
    total / targets.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(x: Vec<f32>, y: Vec<f32>, width: usize) -> String {
        Rows::new(x, y, width, 1).unwrap_err().to_string()
    }

    #[test]
    fn bad_rows_are_refused_saying_what_is_wrong() {
        assert!(
            err(vec![1.0; 5], vec![1.0; 2], 2)
                .contains("5 input values are not whole rows of width 2")
        );
        assert!(
            err(vec![1.0; 6], vec![1.0; 2], 2).contains("3 rows of inputs but 2 rows of targets")
        );
        assert!(err(vec![], vec![], 2).contains("no rows"));
        assert!(err(vec![1.0; 4], vec![1.0; 2], 0).contains("width 0"));
        let mut x = vec![1.0; 6];
        x[3] = f32::NAN;
        assert!(err(x, vec![1.0; 3], 2).contains("input NaN in row 1, column 1"));
        assert!(
            err(vec![1.0; 4], vec![1.0, f32::INFINITY], 2)
                .contains("target inf in row 1, column 0")
        );
        assert_eq!(
            Rows::new(vec![1.0; 4], vec![2.0; 2], 2, 1).unwrap().rows(),
            2
        );
    }
}
