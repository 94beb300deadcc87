//! What every arithmetic unit offers a training loop, as one trait.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

/// An arithmetic unit as a training loop sees it: a forward pass, an optional sparsity
/// regulariser to add to the loss, and a projection to apply after each optimizer step, each
/// for `members` independent copies whose parameters are stacked along each parameter's first
/// axis (see [`Population`](crate::Population)).
///
/// The trait's methods are the stacked forms, and none shares a name with a unit's own methods:
/// a unit's inherent `forward`, `regularizer` and `clamp_weights` are the plain (one-member)
/// forms a user calls, written as calls of these with `members = 1`. Written with the
/// members-aware math of [`ops`](crate::ops), a unit has its population form for free. Each unit
/// implements this trait in its own file, beside its config and module.
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

    /// Clamps every member's parameters that must stay in a range (identity for units without
    /// one); a training loop calls it after every optimizer step.
    fn clamp_members(self) -> Self {
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

    /// [`snap`](Self::snap), but with the exponents of a product of powers rounded to the
    /// nearest multiple of ½, so that a root `a^0.5` or `a^-0.5` is among the values: the NAC•
    /// and the NALU, whose weights in [−1, 1] can express one; the same as `snap` for every
    /// other unit. An early stop that keeps a near miss training compares a run with both.
    fn snap_halves(self) -> Self {
        self.snap()
    }
}

/// `ModuleDisplay` for a unit described by its sizes alone, `Nau {d_input: 3, d_output: 5,
/// params: 15}`: `sized_display!(Nau);` in the unit's file (it needs `d_input()` and
/// `d_output()`).
macro_rules! sized_display {
    ($unit:ty) => {
        impl burn::module::ModuleDisplay for $unit {
            fn custom_settings(&self) -> Option<burn::module::DisplaySettings> {
                $crate::ops::inline_display()
            }

            fn custom_content(
                &self,
                content: burn::module::Content,
            ) -> Option<burn::module::Content> {
                content
                    .add("d_input", &self.d_input())
                    .add("d_output", &self.d_output())
                    .optional()
            }
        }
    };
}

pub(crate) use sized_display;
