//! Neural arithmetic units for the [Burn](https://burn.dev) deep-learning framework.
//!
//! Layers that learn exact arithmetic (sums, differences, products, quotients, powers) and
//! extrapolate it far outside the training range, as Burn [`Module`](burn::module::Module)s
//! built from `#[derive(Config)]` configs. They run on any Burn device: the backend is chosen at
//! run time by the [`Device`](burn::tensor::Device), and no layer names one.
//!
//! - [`Nac`] (neural accumulator, Trask et al. 2018): `W = tanh(Ŵ) ⊙ σ(M̂)`, `y = x·W`.
//! - [`NacMul`] (the multiplicative NAC, NAC•): `y = exp(log(|x| + ε)·W)`.
//! - [`Nalu`] (neural arithmetic logic unit): `a = x·W`, `m = exp(log(|x| + ε)·W)`,
//!   `g = σ(x·G)`, `y = g⊙a + (1 − g)⊙m`; without gating, `y = a + m`. In base φ
//!   ([`NaluConfig::base`]), Mistry et al.'s G-NALU.
//! - [`Nau`] (neural addition unit, Madsen & Johansen 2020): `z = x·W`, `W ∈ [−1, 1]`.
//! - [`Nmu`] (neural multiplication unit, same paper): `z_j = Π_i (W_ij·x_i + 1 − W_ij)`,
//!   `W ∈ [0, 1]`.
//! - [`Nru`] and [`Nmru`] (neural reciprocal units, Mistry, Farrahi & Hare 2022): division.
//!   NRU `z_j = Π_i (sign(x_i)·|x_i|^{W_ij}·g(W_ij) + 1 − g(W_ij))`; NMRU an NMU over `[x, 1/x]`
//!   with the sign recovered, `Π_k (W_kj·|x'_k| + 1 − W_kj)·cos(π·Σ_k [x'_k < 0]·W_kj)`.
//! - [`Snmu`] (stochastic NMU, same authors): the NMU with multiplicative noise while training.
//! - [`Inalu`] (improved NALU, Schlör et al. 2020): separate weights, capped log path, sign
//!   recovery, input-independent gate.
//! - [`Npu`] and [`RealNpu`] (neural power units, Heim et al. 2020): `z = exp(log r·W_re − k·W_im)
//!   ⊙ cos(log r·W_im + k·W_re)`, real powers of inputs of any sign (RealNPU: `W_im = 0`).
//! - [`Hill`] (Hill Space, DuJardin 2025): the NAC's `W` snapped to exactly −1, 0 or 1 where it
//!   saturates, under a primitive the caller chooses: `x·W`, or `Π_i x_i^{W_i}` with signs.
//! - [`Dmu`] (differentiable DAG unit, arXiv 2509.08180): linear heads predict from each row a
//!   plan of steps, each a signed sum or a product of powers of the nodes before it.
//!
//! Each unit lives in its own module ([`nac`], [`nalu`], …, also re-exported here) with its
//! config, its formula and shapes on `forward`, its sparsity `regularizer` (weighted over time
//! by a [`RegularizerSchedule`]) and its projection after each optimizer step (`clamp_weights`)
//! where it has them. Every unit implements [`ArithmeticUnit`], the same for a training loop
//! over stacked copies, and [`formula::Discretize`]. A [`Population`] trains many
//! independently initialised copies of a unit (one per seed) as one model, in one forward, one
//! backward and one optimizer step. [`formula`] reads a trained stack back as the arithmetic it
//! computes (`a + b`, `a·b`), after snapping its weights to discrete values, or says which weights
//! stand in the way. [`optim`] has RMSProp and Adam with a one-pass update for small parameters.
//! The experiments (the NALU paper's and Madsen & Johansen's tasks, the population trainer, the
//! reports and the `static_toy` command line) are the repository's `lab/` crate, not part of
//! this one.
//!
//! # A two-layer model
//!
//! ```
//! use burn::prelude::*;
//! use burn_nalu::{Nalu, NaluConfig};
//!
//! #[derive(Module, Debug)]
//! struct Model {
//!     hidden: Nalu,
//!     output: Nalu,
//! }
//!
//! impl Model {
//!     fn new(device: &Device) -> Self {
//!         Self {
//!             hidden: NaluConfig::new(100, 2).init(device),
//!             output: NaluConfig::new(2, 1).init(device),
//!         }
//!     }
//!
//!     fn forward(&self, x: Tensor<2>) -> Tensor<2> {
//!         self.output.forward(self.hidden.forward(x))
//!     }
//! }
//!
//! let device = Device::default().autodiff();
//! device.seed(0);
//! let model = Model::new(&device);
//! let x = Tensor::<2>::random([64, 100], burn::tensor::Distribution::Default, &device);
//! let y = model.forward(x);
//! assert_eq!(y.dims(), [64, 1]);
//!
//! // Gradients reach every parameter, including the gates.
//! let grads = y.sum().backward();
//! assert!(model.hidden.gate.as_ref().unwrap().grad(&grads).is_some());
//! assert!(model.output.nac.w_hat.grad(&grads).is_some());
//! ```
//!
//! # Backends
//!
//! The crate features `flex` (default) and `ndarray` choose which Burn CPU backend is compiled
//! in for the tests, examples and benchmarks; `BURN_DEVICE=ndarray` selects it at run time when
//! both are enabled. On flex the gated NALU layer and the units' matrix products run as fused
//! ops with hand-written backward passes ([`ops::gated_nalu`]; [`backend`] says which devices
//! take them); every other backend composes Burn ops, with the same results to rounding
//! ([`ops::gated_nalu_reference`]). The fused loops compute the same bits at every SIMD level
//! ([`simd::SimdLevel`], pinned with `BURN_NALU_SIMD`).
//!
//! # Where things go
//!
//! `ARCHITECTURE.md` in the repository says where a new unit, task or backend goes.

#![warn(missing_docs)]

pub mod backend;
mod error;
pub mod formula;
pub mod ops;
pub mod optim;
mod population;
pub mod recipe;
pub mod recurrent;
mod schedule;
pub mod simd;
mod stack;
mod unit;
pub mod units;

// Each unit's module at the crate root too (`burn_nalu::nac::NacConfig`): the paths users import.
pub use units::{dmu, hill, inalu, nac, nac_mul, nalu, nau, nmru, nmu, npu, nru, real_npu, snmu};

pub use dmu::{Dmu, DmuConfig};
pub use error::ConfigError;
pub use hill::{Hill, HillConfig, HillPrimitive};
pub use inalu::{Inalu, InaluConfig};
pub use nac::{Nac, NacConfig};
pub use nac_mul::{NacMul, NacMulConfig};
pub use nalu::{Nalu, NaluConfig};
pub use nau::{Nau, NauConfig};
pub use nmru::{Nmru, NmruConfig};
pub use nmu::{Nmu, NmuConfig};
pub use npu::{Npu, NpuConfig};
pub use nru::{Nru, NruConfig};
pub use population::Population;
pub use real_npu::{RealNpu, RealNpuConfig, RealNpuRegularizer};
pub use recurrent::{RecurrentCell, RecurrentCellConfig};
pub use schedule::{L1Schedule, RegularizerSchedule};
pub use snmu::{Snmu, SnmuConfig};
pub use stack::Stack;
pub use unit::ArithmeticUnit;

/// What the repository's experiment crate (`lab/`, never published) trains with beyond the
/// public API: the host kernels of its trainer, the population's parameter plumbing and seeding.
/// Not a stable API; a user's own training loop needs none of it.
#[doc(hidden)]
pub mod internals {
    #[cfg(feature = "flex")]
    pub use crate::ops::FastFloat;
    #[cfg(feature = "flex")]
    pub use crate::ops::fused::Recycle;
    #[cfg(feature = "flex")]
    pub use crate::ops::host::{self, HostLayer};
    pub use crate::ops::init::with_member_seeds;
    pub use crate::ops::replace_value;
    pub use crate::population::{values, with_seed, with_values};
    pub use crate::recipe::mean_squared_error;
    pub use crate::recipe::step::{clip_per_member, clip_values, member_means};
    pub use crate::simd::{active as active_simd, pinned as pinned_simd};
}

/// Frees the memory the fused NALU layer keeps between training steps and returns how many
/// bytes that was.
///
/// On the flex backend a layer whose forward cache passes 1 MiB (for instance `Nalu(1024 →
/// 1024)` on a batch of 4096: 72 MB) hands that buffer to a process-wide pool after its
/// backward pass, so that the next step of the same size skips the page faults of fresh memory.
/// The pool keeps at most four buffers; they stay allocated until this function is called or
/// the process ends. Call it after training large layers; the next large step allocates again.
pub fn release_buffers() -> usize {
    #[cfg(feature = "flex")]
    return ops::fused::release_buffers();
    #[cfg(not(feature = "flex"))]
    0
}

/// The README's code compiles and runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
