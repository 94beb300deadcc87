//! The shapes of the models: two units in sequence ([`Stack`], the library's), one alone ([`Single`]), a
//! recurrent cell then a unit ([`Recurrent`]) and a cell read at every step ([`Accumulator`]).

use burn::module::Module;
use burn::tensor::Tensor;

use burn_nalu::formula::Discretize;
use burn_nalu::{ArithmeticUnit, RecurrentCell};

/// Two units in sequence: the library's [`Stack`](burn_nalu::Stack).
pub use burn_nalu::Stack;

/// One unit alone, `[.., inputs] → [.., 1]`: the single-module tasks' model.
#[derive(Module, Debug)]
pub struct Single<U: ArithmeticUnit> {
    /// The unit.
    pub unit: U,
}

impl<U: ArithmeticUnit> ArithmeticUnit for Single<U> {
    const REGULARIZED: bool = U::REGULARIZED;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        self.unit.forward_members(input, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        self.unit.regularizer_members(members)
    }

    fn clamp_members(self) -> Self {
        Self {
            unit: self.unit.clamp_members(),
        }
    }

    fn snap(self) -> Self {
        Self {
            unit: self.unit.snap(),
        }
    }

    fn snap_halves(self) -> Self {
        Self {
            unit: self.unit.snap_halves(),
        }
    }
}

impl<U: Discretize> Single<U> {
    pub(super) fn of(unit: U) -> Self {
        Self { unit }
    }
}

/// A recurrent cell over the steps of a row, then a unit on its last state: `[.., time·inputs]
/// → [.., 1]`, the NALU paper's recurrent model (`stable-nalu`'s `SimpleFunctionRecurrentNetwork`).
#[derive(Module, Debug)]
pub struct Recurrent<C: ArithmeticUnit, O: ArithmeticUnit> {
    /// The cell, `h_t = cell([x_t, h_{t−1}])`.
    pub cell: RecurrentCell<C>,
    /// The output unit on the last state, `[.., hidden] → [.., 1]`.
    pub output: O,
}

impl<C: ArithmeticUnit, O: ArithmeticUnit> ArithmeticUnit for Recurrent<C, O> {
    const REGULARIZED: bool = C::REGULARIZED || O::REGULARIZED;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let states = self.cell.forward_members(input, members);
        let hidden = self.cell.d_hidden() / members;
        let width = states.dims()[D - 1];
        let last = states.narrow(D - 1, width - hidden, hidden);
        self.output.forward_members(last, members)
    }

    /// The sum of both parts' regularisers.
    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        match (
            self.cell.regularizer_members(members),
            self.output.regularizer_members(members),
        ) {
            (Some(a), Some(b)) => Some(a.add(b)),
            (a, b) => a.or(b),
        }
    }

    fn clamp_members(self) -> Self {
        Self {
            cell: self.cell.clamp_members(),
            output: self.output.clamp_members(),
        }
    }

    fn snap(self) -> Self {
        Self {
            cell: self.cell.snap(),
            output: self.output.snap(),
        }
    }

    fn snap_halves(self) -> Self {
        Self {
            cell: self.cell.snap_halves(),
            output: self.output.snap_halves(),
        }
    }
}

impl<C: ArithmeticUnit, O: ArithmeticUnit> Recurrent<C, O> {
    pub(super) fn of(cell: RecurrentCell<C>, output: O) -> Self {
        Self { cell, output }
    }
}

/// A recurrent cell of one state, read after every step: `[.., time·inputs] → [.., time]`, the
/// model of Madsen & Johansen's sequential arithmetic (`stable-nalu`'s `SequentialMnistNetwork`
/// after its image-to-number network).
#[derive(Module, Debug)]
pub struct Accumulator<U: ArithmeticUnit> {
    /// The cell, `h_t = unit([x_t, h_{t−1}])`, `h_0` fixed.
    pub cell: RecurrentCell<U>,
}

impl<U: ArithmeticUnit> ArithmeticUnit for Accumulator<U> {
    const REGULARIZED: bool = U::REGULARIZED;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        self.cell.forward_members(input, members)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        self.cell.regularizer_members(members)
    }

    fn clamp_members(self) -> Self {
        Self {
            cell: self.cell.clamp_members(),
        }
    }

    fn snap(self) -> Self {
        Self {
            cell: self.cell.snap(),
        }
    }

    fn snap_halves(self) -> Self {
        Self {
            cell: self.cell.snap_halves(),
        }
    }
}
