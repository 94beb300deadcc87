//! Every unit as a recurrent cell: `h_t = unit([x_t, h_{t−1}])`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`RecurrentCell`] using the [init function](RecurrentCellConfig::init).
#[derive(Config, Debug)]
pub struct RecurrentCellConfig {
    /// The size of each step's input features.
    pub d_input: usize,
    /// The size of the hidden state.
    pub d_hidden: usize,
    /// The value of every element of `h_0` at initialisation.
    #[config(default = 0.0)]
    pub initial_state: f64,
    /// Whether `h_0` is learned; when not, it stays `initial_state` (`stable-nalu`'s
    /// sequential-MNIST networks fix it at the operation's identity: 0 for sums, 1 for
    /// products).
    #[config(default = true)]
    pub learn_initial_state: bool,
}

/// A recurrent cell around any arithmetic unit, in the form of Madsen & Johansen's
/// `stable-nalu` (`_abstract_recurrent_cell.py`, after Trask et al. 2018's recurrent task):
///
/// `h_t = unit([x_t, h_{t−1}])`, `h_0` a learned vector (initialised at 0) or a fixed one,
///
/// where the unit maps `d_input + d_hidden` features to `d_hidden`. A NAU cell with weights 1
/// on `x_t` and on `h_{t−1}` keeps a running sum; an NMU cell with weights 1 a running product
/// (from `h_0 = 1`). The unit's regulariser, clamps and snapping are the cell's.
///
/// Should be created with [`RecurrentCellConfig`].
#[derive(Module, Debug)]
pub struct RecurrentCell<U: ArithmeticUnit> {
    /// The unit, `[d_input + d_hidden] → [d_hidden]`.
    pub unit: U,
    /// `h_0`, shape `[d_hidden]`.
    pub initial: Param<Tensor<1>>,
    d_input: usize,
    learn_initial: bool,
}

impl RecurrentCellConfig {
    /// Checks the config: both sizes must be at least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("RecurrentCellConfig", "d_input", self.d_input)?;
        ConfigError::check_size("RecurrentCellConfig", "d_hidden", self.d_hidden)?;
        if !self.initial_state.is_finite() {
            let reason = format!("must be finite, got {}", self.initial_state);
            return Err(ConfigError::new(
                "RecurrentCellConfig",
                "initial_state",
                reason,
            ));
        }
        Ok(())
    }

    /// A cell around the unit `unit(d_input + d_hidden, d_hidden)` builds on `device`, with
    /// every element of `h_0` at `initial_state`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`RecurrentCellConfig::validate`].
    pub fn init<U: ArithmeticUnit>(
        &self,
        device: &Device,
        unit: impl FnOnce(usize, usize) -> U,
    ) -> RecurrentCell<U> {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        RecurrentCell {
            unit: unit(self.d_input + self.d_hidden, self.d_hidden),
            initial: Initializer::Constant {
                value: self.initial_state,
            }
            .init([self.d_hidden], device),
            d_input: self.d_input,
            learn_initial: self.learn_initial_state,
        }
    }
}

impl<U: ArithmeticUnit> RecurrentCell<U> {
    /// One step: `h_t = unit([x_t, h_{t−1}])`.
    ///
    /// # Shapes
    ///
    /// - `x_t`: `[batch, d_input]`, `h`: `[batch, d_hidden]`
    /// - output: `[batch, d_hidden]`
    pub fn step(&self, x_t: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        self.unit.forward_members(Tensor::cat(vec![x_t, h], 1), 1)
    }

    /// `h_0` for a batch of `batch` sequences, `[batch, d_hidden]`.
    pub fn initial_state(&self, batch: usize) -> Tensor<2> {
        let h0 = self.h0();
        let d_hidden = h0.dims()[0];
        h0.unsqueeze::<2>().expand([batch, d_hidden])
    }

    /// Every hidden state of a batch of sequences, `h_1 … h_T`.
    ///
    /// # Shapes
    ///
    /// - input: `[batch, time, d_input]`
    /// - output: `[batch, time, d_hidden]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the cell and both sizes.
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let [batch, time, d] = input.dims();
        let cell = format!("RecurrentCell<{}>", std::any::type_name::<U>());
        ops::check_input(&cell, &[batch, time, d], self.d_input, 1);
        let d_hidden = self.initial.dims()[0];
        let flat = self.forward_members(input.reshape([batch, time * d]), 1);
        flat.reshape([batch, time, d_hidden])
    }

    /// `h_0`, outside the autodiff graph when it is not learned (so it gets no gradient and
    /// the optimizer leaves it).
    fn h0(&self) -> Tensor<1> {
        match self.learn_initial {
            true => self.initial.val(),
            false => self.initial.val().detach(),
        }
    }

    /// The size of each step's input features.
    pub fn d_input(&self) -> usize {
        self.d_input
    }

    /// The size of the hidden state.
    pub fn d_hidden(&self) -> usize {
        self.initial.lazy_shape()[0]
    }
}

impl<U: ArithmeticUnit> ArithmeticUnit for RecurrentCell<U> {
    const REGULARIZED: bool = U::REGULARIZED;

    /// Rows of `time` steps flattened, `[..., time·d_input] → [..., time·d_hidden]`: every hidden
    /// state, member by member (a population's `h_0` are its members' own).
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let dims = input.dims();
        let (d, width) = (self.d_input, dims[D - 1]);
        assert!(
            width % d == 0,
            "RecurrentCell: a row of {width} values is not whole steps of d_input = {d} \
             (input shape {dims:?})"
        );
        let d_hidden = self.initial.dims()[0] / members;
        let mut state_dims = dims;
        state_dims[D - 1] = d_hidden;
        let initial = ops::per_feature::<D>(self.h0(), members);
        // In the input's precision: the polish runs the model in f64.
        let mut h = Tensor::zeros(state_dims, (&input.device(), input.dtype())).add(initial);
        let mut states = Vec::with_capacity(width / d);
        for t in 0..width / d {
            let x_t = input.clone().narrow(D - 1, t * d, d);
            h = (self.unit).forward_members(Tensor::cat(vec![x_t, h], D - 1), members);
            states.push(h.clone());
        }
        Tensor::cat(states, D - 1)
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        self.unit.regularizer_members(members)
    }

    fn clamp_members(self) -> Self {
        Self {
            unit: self.unit.clamp_members(),
            ..self
        }
    }

    fn snap(self) -> Self {
        Self {
            unit: self.unit.snap(),
            ..self
        }
    }

    fn snap_halves(self) -> Self {
        Self {
            unit: self.unit.snap_halves(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nau, NauConfig, Nmu, NmuConfig};
    use burn::tensor::{DType, TensorData};

    /// A NAU cell with weights 1 keeps a running sum; an NMU cell from `h_0 = 1` a running
    /// product: exact in f32 for these small integers.
    #[test]
    fn discrete_cells_keep_running_sums_and_products() {
        let device = Device::default();
        let mut sum =
            RecurrentCellConfig::new(1, 1).init(&device, |i, o| NauConfig::new(i, o).init(&device));
        sum.unit = Nau {
            weight: Param::from_data([[1.0f32], [1.0]], &device),
        };
        let x = Tensor::<3>::from_floats([[[2.0], [-3.0], [5.0]], [[1.0], [1.0], [4.0]]], &device);
        let sums = sum.forward(x.clone()).into_data();
        assert_eq!(
            sums,
            TensorData::from([[[2.0f32], [-1.0], [4.0]], [[1.0], [2.0], [6.0]]])
        );
        let mut product: RecurrentCell<Nmu> =
            RecurrentCellConfig::new(1, 1).init(&device, |i, o| NmuConfig::new(i, o).init(&device));
        product.unit = Nmu {
            weight: Param::from_data([[1.0f32], [1.0]], &device),
        };
        product.initial = Param::from_data([1.0f32], &device);
        let products = product.forward(x).into_data();
        assert_eq!(
            products,
            TensorData::from([[[2.0f32], [-6.0], [-30.0]], [[1.0], [1.0], [4.0]]])
        );
        // One step at a time gives the same states.
        let h1 = product.step(
            Tensor::<2>::from_floats([[2.0], [1.0]], &device),
            product.initial_state(2),
        );
        assert_eq!(h1.into_data(), TensorData::from([[2.0f32], [1.0]]));
    }

    /// In f64 (the precision of the polish) the state is f64 too, to the bit of f64 sums.
    #[test]
    fn runs_in_the_inputs_precision() {
        let device = Device::default();
        fn f64_tensor<const D: usize>(
            v: Vec<f64>,
            shape: [usize; D],
            device: &Device,
        ) -> Tensor<D> {
            Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
        }
        let mut sum =
            RecurrentCellConfig::new(1, 1).init(&device, |i, o| NauConfig::new(i, o).init(&device));
        sum.unit = Nau {
            weight: Param::from_tensor(f64_tensor(vec![1.0, 1.0], [2, 1], &device)),
        };
        sum.initial = Param::from_tensor(f64_tensor(vec![0.5], [1], &device));
        let xs = [0.1, 0.2, 0.3];
        let states = sum.forward(f64_tensor(xs.to_vec(), [1, 3, 1], &device));
        assert_eq!(states.dtype(), DType::F64);
        // `x_t + h_{t−1}`: two terms, one rounding each in f64.
        let expected: Vec<f64> = (xs.iter())
            .scan(0.5, |h, x| {
                *h += x;
                Some(*h)
            })
            .collect();
        assert_eq!(states.into_data().try_to_vec::<f64>().unwrap(), expected);
    }

    /// A fixed `h_0` starts at `initial_state` and gets no gradient, where a learned one does.
    #[test]
    fn a_fixed_initial_state_is_not_trained() {
        let device = Device::default().autodiff();
        let x = || Tensor::<3>::from_floats([[[2.0], [3.0]]], &device);
        for learn in [true, false] {
            let cell = RecurrentCellConfig::new(1, 1)
                .with_initial_state(1.0)
                .with_learn_initial_state(learn)
                .init(&device, |i, o| NmuConfig::new(i, o).init(&device));
            assert_eq!(
                cell.initial_state(1).into_data(),
                TensorData::from([[1.0f32]])
            );
            let grads = cell.forward(x()).sum().backward();
            assert_eq!(
                cell.initial.grad(&grads).is_some(),
                learn,
                "learn = {learn}"
            );
            assert!(cell.unit.weight.grad(&grads).is_some());
        }
        let err = RecurrentCellConfig::new(1, 1)
            .with_initial_state(f64::NAN)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "RecurrentCellConfig.initial_state must be finite, got NaN"
        );
    }

    #[test]
    #[should_panic(expected = "must have d_input = 2 features")]
    fn wrong_step_width_names_the_cell_and_sizes() {
        let device = Device::default();
        let cell =
            RecurrentCellConfig::new(2, 1).init(&device, |i, o| NauConfig::new(i, o).init(&device));
        cell.forward(Tensor::zeros([1, 4, 3], &device));
    }
}
