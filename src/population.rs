//! Populations: many independently initialised copies of a unit, trained as one model.

use std::sync::Mutex;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::ArithmeticUnit;
use crate::ops;

/// `S` independent copies (members) of a unit, run in one forward pass, one backward pass and
/// one optimizer step.
///
/// Each parameter of the members is stacked along its first axis: a `[d_in, d_out]` weight
/// becomes `[S·d_in, d_out]`, member `k` owning rows `k·d_in..(k+1)·d_in`, and a `[n]` vector
/// becomes `[S·n]`. [`Population::forward`] maps `[S, batch, d_in]` to `[S, batch, d_out]`,
/// member `k` seeing only block `k` of the input. Nothing mixes members, so a loss that sums each
/// member's own loss gives every member exactly the gradients it would get alone, and the
/// element-wise optimizers (Adam, RMSProp) update each as they would alone; per-member gradient
/// clipping, divergence and checkpoints are up to the training loop ([`Population::select`]
/// replaces chosen members).
///
/// A population pays the per-op overhead of a small layer once for all its members: training
/// a hundred seeds of a small model this way is far faster than a hundred runs.
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use burn_nalu::{NauConfig, Population};
///
/// let device = Device::default();
/// // Member k is initialised exactly as a single NAU after `device.seed(k)`.
/// let population = Population::init(0..4, &device, |d| NauConfig::new(10, 2).init(d));
/// assert_eq!(population.members(), 4);
/// let x = Tensor::<3>::random([4, 32, 10], Distribution::Default, &device);
/// assert_eq!(population.forward(x).dims(), [4, 32, 2]);
/// assert_eq!(population.regularizer().unwrap().dims(), [4]);
/// let third = population.member(2); // a plain `Nau`, e.g. to save or read back
/// assert_eq!(third.weight.dims(), [10, 2]);
/// ```
#[derive(Module, Debug)]
pub struct Population<U: Module + ArithmeticUnit> {
    /// The members' parameters, stacked along each parameter's first axis.
    pub unit: U,
    members: usize,
}

/// Burn's backend random generators are process-wide: seeding and drawing the initial weights
/// of a module other than the crate's units must not interleave with another thread doing the
/// same.
static SEEDED_INIT: Mutex<()> = Mutex::new(());

/// Runs `f` with the crate's units drawing from a generator of this thread seeded with `seed`
/// (`ops::init::seeded`: immune to other threads' draws), and the backend generator of
/// `device` seeded the same for any other module's draws, alone. Lazily initialised parameters
/// must be read inside `f` to be drawn under the seed.
pub fn with_seed<R>(device: &Device, seed: u64, f: impl FnOnce() -> R) -> R {
    let _guard = SEEDED_INIT.lock().unwrap_or_else(|p| p.into_inner());
    device.seed(seed);
    ops::init::seeded(seed, f)
}

impl<U: Module + ArithmeticUnit> Population<U> {
    /// One member per seed, member `k` built by `init` right after the device's generator is
    /// seeded with `seeds[k]` (its parameters are drawn then, in their declaration order), so
    /// that it equals a unit built the same way on its own after `device.seed(seeds[k])` (on
    /// flex and ndarray). The crate's units draw these weights from a generator of this thread
    /// seeded the same way, so other threads' draws cannot change them; another module's draws
    /// in `init` come from the device's generator, seeded alike (a module mixing both draws
    /// each part from the start of its own generator).
    ///
    /// # Panics
    /// If `seeds` is empty.
    pub fn init(
        seeds: impl IntoIterator<Item = u64>,
        device: &Device,
        mut init: impl FnMut(&Device) -> U,
    ) -> Self {
        let members = seeds
            .into_iter()
            .map(|seed| {
                with_seed(device, seed, || {
                    let unit = init(device);
                    values(&unit); // draws lazily initialised parameters now, under the seed
                    unit
                })
            })
            .collect();
        Self::from_members(members)
    }

    /// The population of `members`, in order.
    ///
    /// # Panics
    /// If `members` is empty or their parameters differ in shape.
    pub fn from_members(members: Vec<U>) -> Self {
        let count = members.len();
        assert!(count > 0, "a population needs at least one member");
        let mut members = members.into_iter();
        let first = members.next().expect("checked above");
        let mut columns: Vec<Vec<Tensor<1>>> =
            values(&first).into_iter().map(|v| vec![v]).collect();
        for member in members {
            let params = values(&member);
            assert_eq!(params.len(), columns.len(), "members of one kind of unit");
            for (column, value) in columns.iter_mut().zip(params) {
                column.push(value);
            }
        }
        let mut stack = Mapper::new(|_, t, flat: &mut dyn Iterator<Item = Tensor<1>>| {
            let shape = t.shape();
            let parts: Vec<_> = flat.map(|v| v.reshape(shape.clone())).collect();
            assert!(
                parts.iter().all(|p| p.shape() == shape),
                "members' parameters differ in shape"
            );
            Tensor::cat(parts, 0)
        });
        stack.sources = columns.into_iter().map(|c| c.into_iter()).collect();
        Self {
            unit: first.map(&mut stack),
            members: count,
        }
    }

    /// `n` copies of `unit` (a population whose members all start the same).
    #[doc(hidden)]
    pub fn repeated(unit: U, n: usize) -> Self {
        let mut repeat =
            Mapper::new(move |_, t, _: &mut dyn Iterator<Item = Tensor<1>>| t.repeat_dim(0, n));
        Self {
            unit: unit.map(&mut repeat),
            members: n,
        }
    }

    /// The number of members.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Member `k` as a plain unit (a copy of its parameters, same parameter ids).
    ///
    /// # Panics
    /// If `k` is not below [`members`](Self::members).
    pub fn member(&self, k: usize) -> U {
        assert!(k < self.members, "member {k} of {}", self.members);
        let s = self.members;
        let mut narrow = Mapper::new(move |_, t, _: &mut dyn Iterator<Item = Tensor<1>>| {
            let rows = t.dims()[0] / s;
            t.narrow(0, k * rows, rows)
        });
        self.unit.clone().map(&mut narrow)
    }

    /// The members' forward passes: `[S, batch, d_in] → [S, batch, d_out]`.
    ///
    /// # Panics
    /// If the input is not `[S, batch, d_in]`; the message names the layer and the sizes.
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        self.unit.forward_members(input, self.members)
    }

    /// Each member's sparsity regulariser, `[S]`, or `None` for units without one.
    pub fn regularizer(&self) -> Option<Tensor<1>> {
        self.unit.regularizer_members(self.members)
    }

    /// Clamps every member's constrained parameters; call after every optimizer step.
    pub fn clamp_weights(self) -> Self {
        Self {
            unit: self.unit.clamp_members(),
            ..self
        }
    }

    /// The population of the members where `keep` is set, in order: to stop computing members
    /// that have finished. Parameters keep their ids, so an optimizer's state can follow
    /// ([`FastAdam::retain_members`](crate::optim::FastAdam::retain_members)).
    ///
    /// # Panics
    /// If `keep` does not have one entry per member or keeps none.
    pub fn retain(self, keep: &[bool]) -> Self {
        assert_eq!(keep.len(), self.members, "one flag per member");
        let index: Vec<i64> = (0..self.members as i64)
            .filter(|&k| keep[k as usize])
            .collect();
        assert!(!index.is_empty(), "a population keeps at least one member");
        if index.len() == self.members {
            return self;
        }
        let s = self.members;
        let kept = index.len();
        let mut retain = Mapper::new(move |device, t, _: &mut dyn Iterator<Item = Tensor<1>>| {
            let [rows, rest] = t.dims();
            let idx = TensorData::new(index.clone(), [kept]);
            let idx = Tensor::<1, burn::tensor::Int>::from_data(idx, device);
            let blocks = t.reshape([s, rows / s * rest]).select(0, idx);
            blocks.reshape([kept * rows / s, rest])
        });
        Self {
            unit: self.unit.map(&mut retain),
            members: kept,
        }
    }

    /// This population with member `k` taken from `other` wherever `take_other[k]`: to restore
    /// members that must not move, keep best checkpoints, or restart some. Parameters keep
    /// their ids (and so their optimizer state) and their gradient tracking.
    ///
    /// # Panics
    /// If `take_other` does not have one entry per member.
    pub fn select(self, other: &Self, take_other: &[bool]) -> Self {
        assert_eq!(take_other.len(), self.members, "one flag per member");
        if !take_other.iter().any(|&t| t) {
            return self;
        }
        let s = self.members;
        let flags = take_other.to_vec();
        let mut select = Mapper::new(
            move |device, t, other: &mut dyn Iterator<Item = Tensor<1>>| {
                let shape = t.shape();
                let per_member = shape.num_elements() / s;
                let mask: Vec<bool> = flags
                    .iter()
                    .flat_map(|&f| std::iter::repeat_n(f, per_member))
                    .collect();
                let mask =
                    Tensor::<1, Bool>::from_data(TensorData::new(mask, [s * per_member]), device);
                let own = t.reshape([s * per_member]);
                let theirs = other.next().expect("a parameter of the other population");
                own.mask_where(mask, theirs).reshape(shape)
            },
        );
        select.sources = values(&other.unit)
            .into_iter()
            .map(|v| vec![v].into_iter())
            .collect();
        Self {
            unit: self.unit.map(&mut select),
            members: self.members,
        }
    }
}

/// Every float parameter of `module`, flattened, in visiting order (drawing lazily initialised
/// ones).
pub fn values<M: Module>(module: &M) -> Vec<Tensor<1>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // Off autodiff: a reshape there would stay in its graph (see `ops::replace_value`).
            let t = param.val().without_autodiff();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// `module` with its float parameters replaced by `values` (flattened, in visiting order, as
/// [`values`] returns them), each keeping its id, shape and gradient tracking.
pub fn with_values<M: Module>(module: M, values: Vec<Tensor<1>>) -> M {
    let mut set = Mapper::new(|_, t, value: &mut dyn Iterator<Item = Tensor<1>>| {
        let value = value.next().expect("one value per parameter");
        value.reshape(t.shape()).to_device(&t.device())
    });
    set.sources = values.into_iter().map(|v| vec![v].into_iter()).collect();
    module.map(&mut set)
}

type Rewrite = dyn FnMut(&Device, Tensor<2>, &mut dyn Iterator<Item = Tensor<1>>) -> Tensor<2>;

/// Rewrites every float parameter (seen as `[rows, rest]`) outside the autodiff graph, with the
/// matching entries of `sources` (one iterator per parameter, in visiting order) at hand.
struct Mapper {
    rewrite: Box<Rewrite>,
    sources: Vec<std::vec::IntoIter<Tensor<1>>>,
    next: usize,
}

impl Mapper {
    fn new(
        rewrite: impl FnMut(&Device, Tensor<2>, &mut dyn Iterator<Item = Tensor<1>>) -> Tensor<2>
        + 'static,
    ) -> Self {
        Self {
            rewrite: Box::new(rewrite),
            sources: Vec::new(),
            next: 0,
        }
    }
}

impl ModuleMapper for Mapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let mut empty = Vec::new().into_iter();
        let source = self.sources.get_mut(self.next).unwrap_or(&mut empty);
        self.next += 1;
        let rewrite = &mut self.rewrite;
        ops::replace_value(param, |t| {
            let dims = t.dims();
            let rows = dims[0];
            let rest = t.shape().num_elements() / rows.max(1);
            let device = t.device();
            let out = rewrite(&device, t.reshape([rows, rest]), source);
            let mut new_dims = dims;
            new_dims[0] = out.dims()[0];
            out.reshape(new_dims)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NauConfig, NpuConfig};

    #[test]
    fn members_are_initialised_as_single_units_with_their_seeds() {
        let device = Device::default();
        let population = Population::init([3, 7], &device, |d| NpuConfig::new(4, 2).init(d));
        for (k, seed) in [3, 7].into_iter().enumerate() {
            // Read inside the seeded scope: the parameters are drawn lazily, at the first read,
            // and a draw outside it would take the device's generator, which other tests seed.
            let alone = with_seed(&device, seed, || {
                let unit = NpuConfig::new(4, 2).init(&device);
                values(&unit);
                unit
            });
            let member = population.member(k);
            assert_eq!(member.w_re.val().into_data(), alone.w_re.val().into_data());
            assert_eq!(member.gate.val().into_data(), alone.gate.val().into_data());
        }
        assert_eq!(population.unit.w_re.dims(), [8, 2]);
        assert_eq!(population.unit.gate.dims(), [8]);
    }

    #[test]
    fn select_takes_the_flagged_members_from_the_other() {
        let device = Device::default();
        let a = Population::init(0..3, &device, |d| NauConfig::new(2, 2).init(d));
        let b = Population::init(10..13, &device, |d| NauConfig::new(2, 2).init(d));
        let mixed = a.clone().select(&b, &[false, true, false]);
        let w = |p: &Population<crate::Nau>, k| p.member(k).weight.val().into_data();
        assert_eq!(w(&mixed, 0), w(&a, 0));
        assert_eq!(w(&mixed, 1), w(&b, 1));
        assert_eq!(w(&mixed, 2), w(&a, 2));
    }

    #[test]
    fn retain_keeps_the_flagged_members_in_order() {
        let device = Device::default();
        let all = Population::init(0..4, &device, |d| NpuConfig::new(3, 2).init(d));
        let kept = all.clone().retain(&[true, false, false, true]);
        assert_eq!(kept.members(), 2);
        for (k, from) in [(0, 0), (1, 3)] {
            let (a, b) = (kept.member(k), all.member(from));
            assert_eq!(a.w_re.val().into_data(), b.w_re.val().into_data());
            assert_eq!(a.gate.val().into_data(), b.gate.val().into_data());
        }
    }

    #[test]
    #[should_panic(expected = "Nau: a population of 3 takes input [3, batch, 2]")]
    fn a_wrong_member_count_in_the_input_is_named() {
        let device = Device::default();
        let population = Population::init(0..3, &device, |d| NauConfig::new(2, 1).init(d));
        population.forward(Tensor::zeros([2, 5, 2], &device));
    }
}
