//! Two units in sequence, the shape of every published static arithmetic model.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::ArithmeticUnit;
use crate::formula::{self, Discretize, Formula, FormulaError, SnapOptions};

/// Two units in sequence, `y = output(hidden(x))`: NAU → NMU for products, NAU → RealNPU for
/// quotients and roots, NALU → NALU as in the NALU paper.
///
/// Shapes: `[.., d_input] → [.., d_hidden] → [.., d_output]` for one model,
/// `[members, batch, d_input] → [members, batch, d_output]` in a
/// [`Population`](crate::Population). Its regulariser is the sum of both units' (Madsen &
/// Johansen weight every layer alike), its clamps and snap those of each unit, and it reads
/// back as one [`Formula`] ([`Stack::formula`]); the recipes ([`crate::recipe`]) train it.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_nalu::{NauConfig, NmuConfig, Stack};
///
/// let device = Device::default();
/// let stack = Stack::new(NauConfig::new(4, 2).init(&device), NmuConfig::new(2, 1).init(&device));
/// let y = stack.forward(Tensor::<2>::ones([8, 4], &device));
/// assert_eq!(y.dims(), [8, 1]);
/// ```
#[derive(Module, Debug)]
pub struct Stack<A: ArithmeticUnit, B: ArithmeticUnit> {
    /// The first unit, `[.., d_input] → [.., d_hidden]`.
    pub hidden: A,
    /// The second unit, `[.., d_hidden] → [.., d_output]`.
    pub output: B,
}

impl<A: ArithmeticUnit, B: ArithmeticUnit> Stack<A, B> {
    /// `output(hidden(x))`.
    pub fn new(hidden: A, output: B) -> Self {
        Self { hidden, output }
    }

    /// `output(hidden(x))` over the last axis of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_members(x, 1)
    }

    /// The sum of both units' regularisers (`None` if neither has one).
    pub fn regularizer(&self) -> Option<Tensor<1>> {
        self.regularizer_members(1)
    }

    /// Both units with their constrained weights clamped (call after each optimizer step).
    pub fn clamp_weights(self) -> Self {
        self.clamp_members()
    }
}

impl<A: Discretize, B: Discretize> Stack<A, B> {
    /// The formula the stack computes, its weights snapped to discrete values
    /// ([`formula::extract`]); `x` (`[rows, d_input]`) is the data its gates are judged on.
    ///
    /// # Errors
    ///
    /// [`FormulaError`] naming the weights or gates that are not discrete enough.
    pub fn formula(&self, x: Tensor<2>, options: &SnapOptions) -> Result<Formula, FormulaError> {
        formula::extract(&[&self.hidden, &self.output], x, options)
    }
}

impl<A: ArithmeticUnit, B: ArithmeticUnit> ArithmeticUnit for Stack<A, B> {
    const REGULARIZED: bool = A::REGULARIZED || B::REGULARIZED;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let hidden = self.hidden.forward_members(input, members);
        self.output.forward_members(hidden, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        match (
            self.hidden.regularizer_members(members),
            self.output.regularizer_members(members),
        ) {
            (Some(a), Some(b)) => Some(a.add(b)),
            (a, b) => a.or(b),
        }
    }

    fn clamp_members(self) -> Self {
        Self::new(self.hidden.clamp_members(), self.output.clamp_members())
    }

    fn snap(self) -> Self {
        Self::new(self.hidden.snap(), self.output.snap())
    }

    fn snap_halves(self) -> Self {
        Self::new(self.hidden.snap_halves(), self.output.snap_halves())
    }
}
