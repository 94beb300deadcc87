//! What every arithmetic unit offers a training loop, as one trait.

use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::Tensor;

use crate::ops;

use crate::{Inalu, Nac, Nalu, Nau, Nmu, Npu, RealNpu};

/// An arithmetic unit as a training loop sees it: a forward pass, an optional sparsity
/// regulariser to add to the loss, and a projection to apply after each optimizer step.
///
/// Lets generic code (stacks of units, training loops) treat every unit alike; each method
/// forwards to the unit's own (`Nau::forward`, `Nau::regularizer`, `Nau::clamp_weights`, …).
pub trait ArithmeticUnit: Module + Sized {
    /// The unit's forward pass over the last axis.
    fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D>;

    /// The unit's sparsity regulariser, or `None` when the paper defines none (NAC, NALU).
    fn regularization(&self) -> Option<Tensor<1>> {
        None
    }

    /// Clamps the parameters that must stay in a range (identity for units without one).
    fn project(self) -> Self {
        self
    }
}

impl ArithmeticUnit for Nac {
    fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward(input)
    }
}

impl ArithmeticUnit for Nalu {
    fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward(input)
    }
}

/// Units with a regulariser and a clamp of their own.
macro_rules! regularized_unit {
    ($($unit:ty),*) => {$(
        impl ArithmeticUnit for $unit {
            fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
                self.forward(input)
            }

            fn regularization(&self) -> Option<Tensor<1>> {
                Some(self.regularizer())
            }

            fn project(self) -> Self {
                self.clamp_weights()
            }
        }
    )*};
}

regularized_unit!(Nau, Nmu, Npu, RealNpu);

impl ArithmeticUnit for Inalu {
    fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward(input)
    }

    fn regularization(&self) -> Option<Tensor<1>> {
        Some(self.regularizer())
    }
}

/// The one-line display of units described by their sizes alone:
/// `Nau {d_input: 3, d_output: 5, params: 15}`.
macro_rules! sized_display {
    ($($unit:ty),*) => {$(
        impl ModuleDisplay for $unit {
            fn custom_settings(&self) -> Option<DisplaySettings> {
                ops::inline_display()
            }

            fn custom_content(&self, content: Content) -> Option<Content> {
                content
                    .add("d_input", &self.d_input())
                    .add("d_output", &self.d_output())
                    .optional()
            }
        }
    )*};
}

sized_display!(Nac, Nau, Nmu, Npu, RealNpu);
