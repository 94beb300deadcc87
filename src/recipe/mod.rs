//! The recipes that learn arithmetic: a stack trained from several initialisations at once,
//! the best kept on validation data, then polished and snapped where that does better on
//! validation.
//!
//! Plain gradient descent on an arithmetic stack fails in a share of seeds: NAU → NMU settles
//! in the saddle `((a + b)/2)²` for `a·b` in about a third of them, an NPU on a ratio of mixed
//! sums that fits the training range only. What the lab found to close that gap, in this order:
//!
//! 1. **Restarts** ([`Recipe::inits`]): `N` initialisations trained as one
//!    [`Population`](crate::Population) (each with its own batches and optimizer state), each
//!    keeping its checkpoint of lowest validation MSE.
//! 2. **Polish** ([`polish`]): Levenberg–Marquardt in f64 on the training rows, for the last
//!    digits Adam leaves in flat directions; kept when its validation MSE is lower. Second
//!    order, it also leaves saddles Adam sits in (on the NALU paper's task it lifted every one
//!    of 28 NAU → NMU runs stuck at `((a + b)/2)²` to `a·b`).
//! 3. **Snap** ([`ArithmeticUnit::snap`]): the weights set to their discrete values (NAU
//!    weights to −1, 0, 1, NPU powers to multiples of ½); kept when its validation MSE is no
//!    worse. A model that learned the arithmetic becomes it exactly.
//! 4. **The choice on validation**: of the `N` initialisations after their polish and snap,
//!    the one lowest on validation is kept. A failure's validation MSE is orders of magnitude
//!    above a solution's, so validation sees it.
//!
//! [`fit`] runs the four on a user's model and rows; [`polish_if_better`] and
//! [`snap_if_no_worse`] are steps 2 and 3 alone, for a model trained in one's own loop. The
//! extrapolation (test) data is never read: every choice is made on validation rows.
//!
//! ```
//! use burn::tensor::Device;
//! use burn_nalu::recipe::{fit, Recipe, Rows};
//! use burn_nalu::{NauConfig, NmuConfig, Stack};
//!
//! // y = (x0 + x1) · x3 from four inputs: training and validation rows from U[1, 2).
//! let rows = |n: usize, seed: u32| {
//!     let x: Vec<f32> = (0..n * 4)
//!         .map(|i| 1.0 + ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32)
//!         .collect();
//!     let y = x.chunks(4).map(|r| (r[0] + r[1]) * r[3]).collect();
//!     Rows::new(x, y, 4, 1)
//! };
//! let (train, valid) = (rows(256, 1)?, rows(128, 2)?);
//! let device = Device::default();
//! let recipe = Recipe::new().with_inits(2).with_steps(300).with_eval_every(100);
//! let init = |d: &Device| Stack::new(NauConfig::new(4, 2).init(d), NmuConfig::new(2, 1).init(d));
//! let fitted = fit(init, &train, &valid, &recipe, &device)?;
//! println!("validation MSE {:.2e} from initialisation {}", fitted.valid_mse, fitted.init);
//! let (x, _) = valid.tensors(&device);
//! if let Ok(formula) = fitted.model.formula(x, &Default::default()) {
//!     println!("y = {}", formula.render(&Default::default()));
//! }
//! # Ok::<(), burn_nalu::recipe::RecipeError>(())
//! ```

mod fit;
mod polish;
mod rows;
pub(crate) mod step;

pub use fit::{FitProgress, Fitted, POLISH_ROWS, Recipe, fit, fit_with_progress};
pub use polish::{POLISH_ITERATIONS, Polish, polish};
pub use rows::Rows;
#[doc(hidden)]
pub use rows::mean_squared_error;

use burn::tensor::Device;

use crate::{ArithmeticUnit, ConfigError};

/// Why a recipe could not run.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipeError {
    /// The data: what is wrong with it (a NaN, rows of the wrong width, too few rows).
    Data(String),
    /// An invalid [`Recipe`] field.
    Config(ConfigError),
}

impl std::fmt::Display for RecipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(why) => write!(f, "{why}"),
            Self::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RecipeError {}

impl From<ConfigError> for RecipeError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// What a keep rule did: the candidate's validation MSE and whether the model is now it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kept {
    /// The candidate's (polished or snapped model's) validation MSE.
    pub valid_mse: f64,
    /// Whether the candidate replaced the model.
    pub kept: bool,
}

/// `model` polished on `train` ([`polish`], [`POLISH_ITERATIONS`] at most) if that lowers its
/// validation MSE below `valid_mse` (the model's own), else `model`; and what was decided.
pub fn polish_if_better<U: ArithmeticUnit>(
    model: U,
    train: &Rows,
    valid: &Rows,
    valid_mse: f64,
    device: &Device,
) -> (U, Kept) {
    let (polished, _) = polish(model.clone(), train, device, POLISH_ITERATIONS);
    let candidate = valid.mse(&polished, device);
    let kept = candidate < valid_mse;
    let decision = Kept {
        valid_mse: candidate,
        kept,
    };
    (if kept { polished } else { model }, decision)
}

/// `model` snapped ([`ArithmeticUnit::snap`]) if that does no worse on `valid` than `model`
/// itself, else `model`; and what was decided. No worse, not better: a model that learned the
/// arithmetic and its snapped twin fit the validation rows alike to f32 rounding, and the
/// snapped one is the exact formula.
pub fn snap_if_no_worse<U: ArithmeticUnit>(model: U, valid: &Rows, device: &Device) -> (U, Kept) {
    let snapped = model.clone().snap();
    let candidate = valid.mse(&snapped, device);
    let kept = candidate <= valid.mse(&model, device);
    let decision = Kept {
        valid_mse: candidate,
        kept,
    };
    (if kept { snapped } else { model }, decision)
}

/// The index of the lowest validation MSE (NaN counts as worst); `None` for no entries.
pub fn best_on_validation(valid_mses: &[f64]) -> Option<usize> {
    let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    (0..valid_mses.len()).min_by(|&a, &b| key(valid_mses[a]).total_cmp(&key(valid_mses[b])))
}
