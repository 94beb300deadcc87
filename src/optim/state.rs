//! An optimizer's state: its host or tensor form ([`State`], [`HostFloat`]), the members it
//! keeps, and its export to and import from a checkpoint's [`OptimizerState`].

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Element, Tensor, TensorData};
use num_traits::Float;

use super::rules::Rule;
use super::{Elementwise, HOST_MAX_LEN};

/// An optimizer's state, as a checkpoint keeps it: the steps taken and, for each float
/// parameter in visiting order, its state slots (`None` before its first update), widened to
/// f64 (exactly, from f32).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// The optimizer steps taken.
    pub steps: i32,
    /// Each float parameter's state slots in visiting order (Adam's two moments, RMSProp's
    /// one), `None` before its first update.
    pub params: Vec<Option<Vec<Vec<f64>>>>,
}

/// Each float parameter of `module`, in visiting order: its id and its value (off autodiff).
fn parameters<M: Module>(module: &M) -> Vec<(ParamId, Tensor<1>)> {
    struct Collect(Vec<(ParamId, Tensor<1>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().inner();
            let n = t.shape().num_elements();
            self.0.push((param.id, t.reshape([n])));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// The state slots of one parameter, flattened.
#[doc(hidden)]
pub enum State {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
    Tensor(Vec<Tensor<1>>),
}

impl<R: Rule> Elementwise<R> {
    pub(super) fn retain_members(&mut self, keep: &[bool], members: usize) {
        assert_eq!(keep.len(), members, "one flag per member");
        fn blocks<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            let per = v.len() / keep.len();
            let kept = v.chunks(per).zip(keep).filter(|(_, k)| **k);
            kept.flat_map(|(block, _)| block.to_vec()).collect()
        }
        let index: Vec<i64> = (0..members as i64).filter(|&k| keep[k as usize]).collect();
        for state in self.state.values_mut() {
            match state {
                State::F32(slots) => slots.iter_mut().for_each(|s| *s = blocks(s, keep)),
                State::F64(slots) => slots.iter_mut().for_each(|s| *s = blocks(s, keep)),
                State::Tensor(slots) => {
                    for s in slots.iter_mut() {
                        let n = s.dims()[0];
                        let device = s.device();
                        let idx = Tensor::<1, burn::tensor::Int>::from_data(
                            TensorData::new(index.clone(), [index.len()]),
                            &device,
                        );
                        let per = n / members;
                        *s = s
                            .clone()
                            .reshape([members, per])
                            .select(0, idx)
                            .reshape([index.len() * per]);
                    }
                }
            }
        }
    }

    pub(super) fn export<M: Module>(&self, module: &M) -> OptimizerState {
        let widen = |v: &Vec<Tensor<1>>| -> Vec<Vec<f64>> {
            let host = |t: &Tensor<1>| t.clone().into_data().convert::<f64>().try_to_vec();
            v.iter().map(|t| host(t).expect("float state")).collect()
        };
        let slots = |id: &ParamId| match self.state.get(id)? {
            State::F32(v) => Some(
                v.iter()
                    .map(|s| s.iter().map(|&x| x as f64).collect())
                    .collect(),
            ),
            State::F64(v) => Some(v.clone()),
            State::Tensor(v) => Some(widen(v)),
        };
        OptimizerState {
            steps: self.steps,
            params: parameters(module).iter().map(|(id, _)| slots(id)).collect(),
        }
    }

    pub(super) fn import<M: Module>(
        &mut self,
        module: &M,
        state: &OptimizerState,
    ) -> Result<(), String> {
        let params = parameters(module);
        if params.len() != state.params.len() {
            let (got, want) = (state.params.len(), params.len());
            return Err(format!(
                "optimizer state of {got} parameters for a module of {want}"
            ));
        }
        let mut fresh = HashMap::new();
        for ((id, value), slots) in params.into_iter().zip(&state.params) {
            let Some(slots) = slots else { continue };
            let n = value.dims()[0];
            if slots.len() != R::SLOTS || slots.iter().any(|s| s.len() != n) {
                return Err(format!(
                    "optimizer state does not fit a parameter of {n} values"
                ));
            }
            let host = n <= HOST_MAX_LEN && crate::backend::on_host(&value.device());
            let restored = match value.dtype() {
                DType::F32 if host => State::F32(
                    slots
                        .iter()
                        .map(|s| s.iter().map(|&x| x as f32).collect())
                        .collect(),
                ),
                DType::F64 if host => State::F64(slots.clone()),
                dtype => {
                    let device = value.device();
                    let tensor = |s: &Vec<f64>| {
                        let data = TensorData::new(s.clone(), [n]).convert_dtype(dtype);
                        Tensor::<1>::from_data(data, &device)
                    };
                    State::Tensor(slots.iter().map(tensor).collect())
                }
            };
            fresh.insert(id, restored);
        }
        (self.state, self.steps) = (fresh, state.steps);
        Ok(())
    }
}

/// f32 and f64, the float types with a host state.
#[doc(hidden)]
pub trait HostFloat: Float + Element {
    fn wrap(slots: Vec<Vec<Self>>) -> State;
    fn slots(state: &mut State) -> Option<&mut Vec<Vec<Self>>>;
}

/// `HostFloat` for a float type and the `State` variant that holds it.
macro_rules! host_float {
    ($float:ty, $variant:ident) => {
        impl HostFloat for $float {
            fn wrap(slots: Vec<Vec<$float>>) -> State {
                State::$variant(slots)
            }

            fn slots(state: &mut State) -> Option<&mut Vec<Vec<$float>>> {
                match state {
                    State::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

host_float!(f32, F32);
host_float!(f64, F64);
