//! What every arithmetic unit offers a training loop, as one trait.

use burn::module::{Content, DisplaySettings, Module, ModuleDisplay};
use burn::tensor::Tensor;

use crate::formula::Discretize;
use crate::ops;
use crate::{Nac, NacMul, Nau, Nmu, Npu, RealNpu};

/// An arithmetic unit as a training loop sees it: a forward pass, an optional sparsity
/// regulariser to add to the loss, and a projection to apply after each optimizer step.
///
/// Each method takes `members`, the number of independent copies whose parameters are stacked
/// along each parameter's first axis (see [`Population`](crate::Population)); a plain unit is
/// one member, and its own `forward`, `regularizer` and `clamp_weights` call these with 1.
/// Written with the members-aware math of `ops`, a unit has its population form for free.
/// Each unit implements this trait in its own file, beside its config and module.
pub trait ArithmeticUnit: Module + ModuleDisplay + Sized {
    /// Whether the unit has a sparsity regulariser ([`regularizer_members`] returns `Some`).
    ///
    /// [`regularizer_members`]: ArithmeticUnit::regularizer_members
    const REGULARIZED: bool = false;

    /// The forward pass over the last axis: `[..., d_in] → [..., d_out]` for one member,
    /// `[members, batch, d_in] → [members, batch, d_out]` for more, member by member.
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D>;

    /// Each member's sparsity regulariser, `[members]`, or `None` when the unit has none (NAC,
    /// NALU).
    fn regularizer_members(&self, _members: usize) -> Option<Tensor<1>> {
        None
    }

    /// Clamps the parameters that must stay in a range (identity for units without one).
    fn clamp_weights(self) -> Self {
        self
    }

    /// The unit with its weights snapped to the discrete values of the arithmetic they
    /// approximate (identity for units without such values): NAU and NAC weights to −1, 0 or 1,
    /// NMU weights to 0 or 1, NPU powers to multiples of ½. A trained unit near an exact
    /// solution becomes that solution; training loops can keep the snapped weights when they
    /// do better on validation data.
    fn snap(self) -> Self {
        self
    }

    /// The forward pass of a plain unit (one member): `[..., d_in] → [..., d_out]`.
    fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// The sparsity regulariser of a plain unit, or `None` when the unit has none.
    fn regularizer(&self) -> Option<Tensor<1>> {
        self.regularizer_members(1)
    }

    /// The unit as a layer [`formula::extract`](crate::formula::extract) can read, if it is one.
    fn as_formula_layer(&self) -> Option<&dyn Discretize> {
        None
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

sized_display!(Nac, NacMul, Nau, Nmu, Npu, RealNpu);
