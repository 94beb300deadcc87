//! [`fit`]: a recipe run on a user's model and rows.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::config::Config;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::rows::mean_squared_error;
use super::step::{clip_per_member, member_means};
use super::{Kept, RecipeError, Rows, best_on_validation, polish_if_better, snap_if_no_worse};
use crate::optim::FastAdamConfig;
use crate::population::values;
use crate::{ArithmeticUnit, ConfigError, Population, RegularizerSchedule};

/// How [`fit`] trains: Adam with a regulariser ramp, from [`inits`](Recipe::inits)
/// initialisations at once, then polish and snap.
///
/// The defaults are the lab's recipe for NAU → NAU and the NPUs on the NALU paper's task
/// (Adam 0.01, batch 64, 16,000 steps, the regulariser ramped in over steps 4,000 to 8,000 at
/// λ = 0.1 times the variance of the training targets) with 8 initialisations, polish and snap;
/// [`Recipe::products`] is NAU → NMU's, which needs longer before the regulariser may act.
#[derive(Config, Debug)]
pub struct Recipe {
    /// Initialisations trained together; the one lowest on validation is kept.
    #[config(default = 8)]
    pub inits: usize,
    /// Optimizer steps.
    #[config(default = 16_000)]
    pub steps: usize,
    /// Training rows per step, drawn with replacement, for each initialisation apart.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[config(default = 0.01)]
    pub lr: f64,
    /// Steps between evaluations on the validation rows (each keeps the best checkpoint).
    #[config(default = 250)]
    pub eval_every: usize,
    /// The weight of the units' sparsity regulariser over the steps (`None`: off).
    #[config(default = "Some(RegularizerSchedule { lambda: 0.1, start: 4000, end: 8000 })")]
    pub regularizer: Option<RegularizerSchedule>,
    /// Whether the regulariser's weight is multiplied by the variance of the training targets
    /// (so that it weighs alike against the MSE whatever the targets' scale).
    #[config(default = true)]
    pub scale_regularizer: bool,
    /// Each initialisation's gradient clipped to this L2 norm per parameter (`None`: no clip).
    pub clip_norm: Option<f64>,
    /// Polish the kept model ([`polish_if_better`]).
    #[config(default = true)]
    pub polish: bool,
    /// Snap the kept model ([`snap_if_no_worse`]).
    #[config(default = true)]
    pub snap: bool,
    /// Early stop: an initialisation stops once, after the regulariser's ramp, its validation
    /// MSE has not improved by 1% for this many evaluations and its weights fit the validation
    /// rows no worse than the same weights snapped, either way ([`ArithmeticUnit::snap`] and
    /// [`ArithmeticUnit::snap_halves`]; `None`: the whole budget). The second
    /// condition keeps a near miss training: weights a few ε from exact values sit on a
    /// plateau long before training carries them the rest of the way.
    pub patience: Option<usize>,
    /// The seed of the initial weights (initialisation `k` from `seed ^ (k << 40)`) and of
    /// the batches.
    #[config(default = 0)]
    pub seed: u64,
}

impl Recipe {
    /// NAU → NMU's recipe: 64,000 steps, the regulariser ramped over steps 40,000 to 60,000.
    /// At the start every NAU weight drifts to ½ and the NMU squares `((a + b)/2)²`, a saddle
    /// near `a·b`; the regulariser, pushing each weight to 0 or 1, must wait until training has
    /// left it.
    pub fn products() -> Self {
        let ramp = RegularizerSchedule {
            lambda: 0.1,
            start: 40_000,
            end: 60_000,
        };
        Self::new().with_steps(64_000).with_regularizer(Some(ramp))
    }

    /// Refuses a field no training can run with, naming it.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a count of zero, a learning rate or clip norm that is not finite
    /// and positive, a regulariser weight that is negative or not finite.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sizes = [
            ("inits", self.inits),
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
        ];
        for (field, value) in sizes {
            ConfigError::check_size("Recipe", field, value)?;
        }
        ConfigError::check_positive("Recipe", "lr", self.lr)?;
        if let Some(clip) = self.clip_norm {
            ConfigError::check_positive("Recipe", "clip_norm", clip)?;
        }
        if let Some(r) = self.regularizer
            && !(r.lambda.is_finite() && r.lambda >= 0.0)
        {
            let reason = format!("lambda must be finite and at least 0, got {}", r.lambda);
            return Err(ConfigError::new("Recipe", "regularizer", reason));
        }
        if self.patience == Some(0) {
            return Err(ConfigError::new(
                "Recipe",
                "patience",
                "must be at least 1, got 0".into(),
            ));
        }
        Ok(())
    }
}

/// A model trained by [`fit`], and the numbers that chose it.
#[derive(Debug, Clone)]
pub struct Fitted<U> {
    /// The model the recipe keeps: of every initialisation's best checkpoint, polished and
    /// snapped where those did better on validation, the one lowest on validation.
    pub model: U,
    /// The kept model's validation MSE.
    pub valid_mse: f64,
    /// The validation MSE of the kept initialisation's best checkpoint before polish and snap.
    pub plain_valid_mse: f64,
    /// Which initialisation was kept (0-based).
    pub init: usize,
    /// Each initialisation's validation MSE after polish and snap, the numbers that chose
    /// [`init`](Fitted::init) (NaN where it never had a finite one).
    pub inits_valid_mse: Vec<f64>,
    /// The step of the kept initialisation's best checkpoint (0: its initial weights).
    pub best_step: usize,
    /// The step at which each initialisation's loss turned NaN or infinite (it stopped there,
    /// keeping its best checkpoint).
    pub diverged: Vec<Option<usize>>,
    /// Steps trained (fewer than the recipe's when every initialisation stopped early).
    pub steps: usize,
    /// What the polish did to the kept initialisation (`None`: not asked for).
    pub polished: Option<Kept>,
    /// What the snap did to the kept initialisation (`None`: not asked for).
    pub snapped: Option<Kept>,
}

/// Rows the polish reads at most: several times the parameters of the stacks it serves, so
/// that every weight is pinned, while its Jacobian (rows × parameters) stays small.
pub const POLISH_ROWS: usize = 1024;

/// A tag in the seed of each initialisation's batch draws, so they share no stream with the
/// weights.
const BATCHES: u64 = 0x4241_5443_4845_5300;

/// Trains the model `init` builds with `recipe` on `train`, choosing on `valid` (see the
/// [module](super) for the recipe's steps).
///
/// `init` is called once per initialisation, with the device's generator seeded; the rows'
/// `width` must be the model's input width and `outputs` its output width.
///
/// # Errors
///
/// [`RecipeError::Config`] for an invalid `recipe`; [`RecipeError::Data`] for rows that
/// [`Rows::check`] refuses (no rows, a NaN or infinite value), when `train` and `valid` differ
/// in width or outputs, the model does not take rows of that width (the unit's
/// message), `train` has fewer rows than the model has parameters, or every initialisation
/// diverged (with their steps).
pub fn fit<U: ArithmeticUnit>(
    init: impl Fn(&Device) -> U,
    train: &Rows,
    valid: &Rows,
    recipe: &Recipe,
    device: &Device,
) -> Result<Fitted<U>, RecipeError> {
    fit_with_progress(init, train, valid, recipe, device, &mut |_| {})
}

/// Where a [`fit`] stands, after each evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitProgress {
    /// Steps taken.
    pub step: usize,
    /// Steps the recipe allows.
    pub steps: usize,
    /// Initialisations still training (not diverged, not stopped early).
    pub training: usize,
    /// The lowest validation MSE of any initialisation so far (before polish and snap).
    pub best_valid_mse: f64,
}

/// [`fit`], calling `on_eval` after every evaluation: for a progress bar or a log line on a
/// long fit.
///
/// # Errors
///
/// As [`fit`].
pub fn fit_with_progress<U: ArithmeticUnit>(
    init: impl Fn(&Device) -> U,
    train: &Rows,
    valid: &Rows,
    recipe: &Recipe,
    device: &Device,
    on_eval: &mut dyn FnMut(&FitProgress),
) -> Result<Fitted<U>, RecipeError> {
    recipe.validate()?;
    for (what, rows) in [("training", train), ("validation", valid)] {
        rows.check()
            .map_err(|e| RecipeError::Data(format!("{what} rows: {e}")))?;
    }
    if (train.width, train.outputs) != (valid.width, valid.outputs) {
        return Err(RecipeError::Data(format!(
            "training rows have {} inputs and {} outputs, validation rows {} and {}",
            train.width, train.outputs, valid.width, valid.outputs
        )));
    }
    let seeds: Vec<u64> = (0..recipe.inits as u64)
        .map(|k| recipe.seed ^ (k << 40))
        .collect();
    let ad = device.clone().autodiff();
    let model = Population::init(seeds.iter().copied(), &ad, &init);
    check_model(&model.member(0).valid(), train, device)?;
    let mut run = Training::new(model, &seeds, train, valid, recipe, device);
    while run.step < recipe.steps && !run.frozen.iter().all(|&f| f) {
        if run.train_step(train, recipe) {
            on_eval(&FitProgress {
                step: run.step,
                steps: recipe.steps,
                training: run.frozen.iter().filter(|&&f| !f).count(),
                best_valid_mse: (run.best_mse.iter().copied()).fold(f64::INFINITY, f64::min),
            });
        }
    }
    run.finish(train, valid, recipe, device)
}

/// Refuses a model whose input or output width is not the rows', or with more parameters than
/// training rows.
fn check_model<U: ArithmeticUnit>(
    model: &U,
    rows: &Rows,
    device: &Device,
) -> Result<(), RecipeError> {
    let params: usize = values(model).iter().map(|v| v.dims()[0]).sum();
    if rows.rows() < params {
        return Err(RecipeError::Data(format!(
            "{} training rows for a model of {params} parameters: too few rows to pin its weights",
            rows.rows()
        )));
    }
    let x = Tensor::<2>::zeros([1, rows.width], device);
    // A unit refuses an input of the wrong width by panicking with its own message (it names
    // the layer and the width it expects); here that is an error about the data.
    let out = catch_unwind(AssertUnwindSafe(|| model.forward_members(x, 1).dims()));
    match out {
        Ok([_, outputs]) if outputs == rows.outputs => Ok(()),
        Ok([_, outputs]) => Err(RecipeError::Data(format!(
            "the model has {outputs} outputs, the rows {} targets",
            rows.outputs
        ))),
        Err(panic) => {
            let why = (panic.downcast_ref::<String>().cloned())
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(RecipeError::Data(format!(
                "rows of width {} do not fit the model: {why}",
                rows.width
            )))
        }
    }
}

/// A population in training: its weights, best checkpoints and stopping state.
struct Training<U: ArithmeticUnit> {
    model: Population<U>,
    best: Population<U>,
    best_mse: Vec<f64>,
    best_step: Vec<usize>,
    /// Evaluations since the last improvement by 1% (after the regulariser's ramp).
    stale: Vec<usize>,
    frozen: Vec<bool>,
    diverged: Vec<Option<usize>>,
    optim: crate::optim::FastAdam,
    rngs: Vec<StdRng>,
    valid: (Tensor<3>, Vec<f32>),
    /// The validation rows, for the early stop's snapped weights.
    valid_rows: Rows,
    lambda_scale: f64,
    step: usize,
}

impl<U: ArithmeticUnit> Training<U> {
    fn new(
        model: Population<U>,
        seeds: &[u64],
        train: &Rows,
        valid: &Rows,
        recipe: &Recipe,
        device: &Device,
    ) -> Self {
        let n = seeds.len();
        let x: Vec<f32> = (0..n).flat_map(|_| valid.x.iter().copied()).collect();
        let x = Tensor::from_data(TensorData::new(x, [n, valid.rows(), valid.width]), device);
        let y: Vec<f32> = (0..n).flat_map(|_| valid.y.iter().copied()).collect();
        let best = model.valid();
        let mut run = Self {
            best_mse: vec![f64::NAN; n],
            best_step: vec![0; n],
            stale: vec![0; n],
            frozen: vec![false; n],
            diverged: vec![None; n],
            optim: FastAdamConfig::new().init(),
            rngs: seeds
                .iter()
                .map(|&s| StdRng::seed_from_u64(s ^ BATCHES))
                .collect(),
            valid: (x, y),
            valid_rows: valid.clone(),
            lambda_scale: match recipe.scale_regularizer {
                true => train.target_variance(),
                false => 1.0,
            },
            step: 0,
            model,
            best,
        };
        run.best_mse = run.member_mse(&run.best);
        run
    }

    /// Each member's validation MSE.
    fn member_mse(&self, model: &Population<U>) -> Vec<f64> {
        let pred = model
            .forward(self.valid.0.clone())
            .into_data()
            .convert::<f64>();
        let pred = pred.as_slice::<f64>().expect("f64 after convert");
        let rows = self.valid.1.len() / model.members();
        (pred.chunks(rows).zip(self.valid.1.chunks(rows)))
            .map(|(p, t)| mean_squared_error(p, t))
            .collect()
    }

    /// The validation MSE of member `k` of `model` snapped, evaluated alone ([`Rows::mse`]):
    /// the lower of its two snaps ([`ArithmeticUnit::snap_halves`]), so that a root's near
    /// miss, whose weights ½ the plain snap moves away from, also trains on.
    fn snapped_mse(&self, model: &Population<U>, k: usize) -> f64 {
        let device = self.valid.0.device();
        let mse = |m: U| self.valid_rows.mse(&m, &device);
        let member = model.member(k);
        mse(member.clone().snap()).min(mse(member.snap_halves()))
    }

    /// One Adam step of every member on its own batch, then an evaluation when one is due
    /// (`true` then).
    fn train_step(&mut self, train: &Rows, recipe: &Recipe) -> bool {
        let n = self.frozen.len();
        let (x, y) = self.batch(train, recipe.batch_size);
        let lambda = recipe.regularizer.map_or(0.0, |r| r.weight(self.step)) * self.lambda_scale;
        let err = self.model.forward(x).sub(y);
        let mse = member_means(err.clone().mul(err), n);
        let loss = match self.model.regularizer() {
            Some(reg) if lambda > 0.0 => mse.add(reg.mul_scalar(lambda)),
            _ => mse,
        };
        let losses = loss.clone().detach().into_data().convert::<f64>();
        let mut grads = GradientsParams::from_grads(loss.sum().backward(), &self.model);
        if let Some(max) = recipe.clip_norm {
            grads = clip_per_member(grads, &self.model, max as f32);
        }
        self.step += 1;
        for (k, &l) in losses.as_slice::<f64>().expect("f64").iter().enumerate() {
            if !l.is_finite() && self.diverged[k].is_none() {
                (self.diverged[k], self.frozen[k]) = (Some(self.step), true);
            }
        }
        let before = self.model.clone();
        let stepped = self
            .optim
            .step(recipe.lr, self.model.clone(), grads)
            .clamp_weights();
        self.model = stepped.select(&before, &self.frozen);
        let due = self.step.is_multiple_of(recipe.eval_every) || self.step == recipe.steps;
        if due {
            self.evaluate(recipe);
        }
        due
    }

    /// Each member's batch, `[members, batch, width]` and `[members, batch, outputs]`.
    fn batch(&mut self, train: &Rows, size: usize) -> (Tensor<3>, Tensor<3>) {
        let (w, o, n) = (train.width, train.outputs, self.rngs.len());
        let (mut x, mut y) = (
            Vec::with_capacity(n * size * w),
            Vec::with_capacity(n * size * o),
        );
        for rng in &mut self.rngs {
            for _ in 0..size {
                let r = rng.random_range(0..train.rows());
                x.extend_from_slice(&train.x[r * w..(r + 1) * w]);
                y.extend_from_slice(&train.y[r * o..(r + 1) * o]);
            }
        }
        let ad = self.model.member(0).devices()[0].clone();
        (
            Tensor::from_data(TensorData::new(x, [n, size, w]), &ad),
            Tensor::from_data(TensorData::new(y, [n, size, o]), &ad),
        )
    }

    /// Keeps each member's improved checkpoint and applies the early stop.
    fn evaluate(&mut self, recipe: &Recipe) {
        let plain = self.model.valid();
        let mses = self.member_mse(&plain);
        let ramped = recipe.regularizer.map_or(0, |r| r.end);
        let mut improved = vec![false; mses.len()];
        for (k, &mse) in mses.iter().enumerate() {
            let best = self.best_mse[k];
            if self.frozen[k] || !mse.is_finite() {
                continue;
            }
            improved[k] = best.is_nan() || mse < best;
            if improved[k] {
                (self.best_mse[k], self.best_step[k]) = (mse, self.step);
            }
            match best.is_nan() || mse < 0.99 * best {
                true => self.stale[k] = 0,
                false if self.step > ramped => self.stale[k] += 1,
                false => {}
            }
            // The snapped weights are evaluated only for a member on a plateau.
            let plateaued = recipe.patience.is_some_and(|p| self.stale[k] >= p);
            if plateaued && mse <= self.snapped_mse(&plain, k) {
                self.frozen[k] = true;
            }
        }
        self.best = self.best.clone().select(&plain, &improved);
    }

    /// Every initialisation's best checkpoint polished and snapped (where kept), and the one
    /// lowest on validation after them: the polish can lift a run out of a saddle, so the
    /// choice is made on what each would become, as the lab's trainer makes it.
    fn finish(
        self,
        train: &Rows,
        valid: &Rows,
        recipe: &Recipe,
        device: &Device,
    ) -> Result<Fitted<U>, RecipeError> {
        if !self.best_mse.iter().any(|v| v.is_finite()) {
            return Err(RecipeError::Data(format!(
                "every initialisation diverged (at steps {:?}): lower the learning rate or \
                 rescale the data",
                self.diverged
            )));
        }
        let rows = recipe.polish.then(|| polish_rows(train));
        let finished: Vec<Finished<U>> = (0..self.best_mse.len())
            .map(|k| {
                let model = self.best.member(k).to_device(device);
                finish_one(
                    model,
                    self.best_mse[k],
                    rows.as_ref(),
                    valid,
                    recipe,
                    device,
                )
            })
            .collect();
        let kept: Vec<f64> = finished.iter().map(|f| f.valid_mse).collect();
        let init = best_on_validation(&kept).expect("at least one initialisation");
        let chosen = finished
            .into_iter()
            .nth(init)
            .expect("one per initialisation");
        Ok(Fitted {
            model: chosen.model,
            valid_mse: chosen.valid_mse,
            plain_valid_mse: self.best_mse[init],
            init,
            best_step: self.best_step[init],
            inits_valid_mse: kept,
            diverged: self.diverged,
            steps: self.step,
            polished: chosen.polished,
            snapped: chosen.snapped,
        })
    }
}

/// One initialisation after the recipe's last steps.
struct Finished<U> {
    model: U,
    valid_mse: f64,
    polished: Option<Kept>,
    snapped: Option<Kept>,
}

/// `model` (of validation MSE `valid_mse`) polished on `rows` and snapped, each where the
/// recipe asks for it and its rule keeps it; a diverged model (NaN) as it is.
fn finish_one<U: ArithmeticUnit>(
    mut model: U,
    mut valid_mse: f64,
    rows: Option<&Rows>,
    valid: &Rows,
    recipe: &Recipe,
    device: &Device,
) -> Finished<U> {
    let finite = valid_mse.is_finite();
    let polished = rows.filter(|_| finite).map(|rows| {
        let (m, kept) = polish_if_better(model.clone(), rows, valid, valid_mse, device);
        (model, valid_mse) = (m, if kept.kept { kept.valid_mse } else { valid_mse });
        kept
    });
    let snapped = (recipe.snap && finite).then(|| {
        let (m, kept) = snap_if_no_worse(model.clone(), valid, device);
        (model, valid_mse) = (m, if kept.kept { kept.valid_mse } else { valid_mse });
        kept
    });
    Finished {
        model,
        valid_mse,
        polished,
        snapped,
    }
}

/// The first [`POLISH_ROWS`] training rows.
fn polish_rows(train: &Rows) -> Rows {
    let n = train.rows().min(POLISH_ROWS);
    Rows {
        x: train.x[..n * train.width].to_vec(),
        y: train.y[..n * train.outputs].to_vec(),
        ..*train
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formula::SnapOptions;
    use crate::{Nau, NauConfig, NmuConfig};

    /// `n` rows of `width` inputs from a fixed sequence uniform in `[lo, hi)`, and `f` of each.
    fn rows(
        n: usize,
        width: usize,
        (lo, hi): (f32, f32),
        seed: u64,
        f: impl Fn(&[f32]) -> f32,
    ) -> Rows {
        let mut rng = StdRng::seed_from_u64(seed);
        let x: Vec<f32> = (0..n * width).map(|_| rng.random_range(lo..hi)).collect();
        let y = x.chunks(width).map(f).collect();
        Rows::new(x, y, width, 1).unwrap()
    }

    fn nau_nmu(d: &Device) -> crate::Stack<Nau, crate::Nmu> {
        crate::Stack::new(NauConfig::new(4, 2).init(d), NmuConfig::new(2, 1).init(d))
    }

    /// NAU → NMU on `(x0 + x1)·x3` from four inputs (`x2` a distractor), as a user would call
    /// it: the recipe keeps the snapped model, which reads back as the formula and is exact on
    /// inputs from [2, 6), beyond the training range [1, 2). Exact: snapped weights are 0 and
    /// 1, so the network computes `(x0 + x1)·x3` with two f32 roundings (relative 6e-8 each)
    /// as the targets do, on outputs below 72: each row errs by at most 72 · 2.4e-7 (both
    /// sides' roundings), an MSE under 3e-10; a look-alike or saddle errs by far more.
    #[test]
    fn a_product_of_a_sum_is_learned_and_read_back() {
        let device = Device::default();
        let f = |r: &[f32]| (r[0] + r[1]) * r[3];
        let (train, valid) = (
            rows(512, 4, (1.0, 2.0), 1, f),
            rows(256, 4, (1.0, 2.0), 2, f),
        );
        let test = rows(256, 4, (2.0, 6.0), 3, f);
        let recipe = Recipe::products().with_inits(4);
        let fitted = fit(nau_nmu, &train, &valid, &recipe, &device).unwrap();
        assert!(fitted.snapped.is_some_and(|s| s.kept), "{fitted:?}");
        assert!(test.mse(&fitted.model, &device) < 3e-10, "{fitted:?}");
        let (x, _) = valid.tensors(&device);
        let formula = fitted.model.formula(x, &SnapOptions::default()).unwrap();
        let naming = crate::formula::Naming::new();
        assert_eq!(formula.render(&naming), "(x0 + x1)·x3", "{fitted:?}");
        assert_eq!(fitted.inits_valid_mse.len(), 4);
        assert_eq!(fitted.valid_mse, valid.mse(&fitted.model, &device));
    }

    /// Two initialisations, 100 steps at a learning rate that moves no weight by an f32 ulp
    /// (a plateau from the first evaluation), evaluated every 10, patience 3: the early stop
    /// alone decides who trains.
    fn plateau_recipe() -> Recipe {
        Recipe::new()
            .with_inits(2)
            .with_steps(100)
            .with_eval_every(10)
            .with_lr(1e-12)
            .with_regularizer(None)
            .with_polish(false)
            .with_snap(false)
            .with_patience(Some(3))
    }

    /// The early stop ends an initialisation on a plateau whose weights are exact, and not
    /// one a few ε from exact weights, on the same plateau: snapped, its weights fit better.
    /// NAU on `x0 + x1`, from weights 1 and 1 (MSE 0: the f32 sum is the target's) and from
    /// 1 and 0.999; a learning rate of 1e-12 moves no weight by an f32 ulp, so both sit on a
    /// plateau from the first evaluation.
    #[test]
    fn the_early_stop_waits_for_a_near_miss() {
        let device = Device::default();
        let f = |r: &[f32]| r[0] + r[1];
        let (train, valid) = (rows(64, 2, (1.0, 2.0), 1, f), rows(64, 2, (1.0, 2.0), 2, f));
        let next = std::cell::Cell::new(0);
        let init = |d: &Device| {
            let second = [1.0f32, 0.999][next.replace(next.get() + 1)];
            Nau {
                weight: burn::module::Param::from_data([[1.0f32], [second]], d),
            }
        };
        let recipe = plateau_recipe();
        let mut training = Vec::new();
        let mut log = |p: &FitProgress| training.push(p.training);
        let fitted = fit_with_progress(init, &train, &valid, &recipe, &device, &mut log).unwrap();
        // The exact one stops at the third evaluation without a 1% improvement; the near
        // miss trains the whole budget.
        assert_eq!(training, [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!((fitted.steps, fitted.init), (100, 0));
    }

    /// The same for a root: a NAC• a few ε from `√x0` (weight 0.499, which the plain snap
    /// moves to 0) trains on, while the same unit snapped to ½ stops on its plateau.
    #[test]
    fn the_early_stop_waits_for_a_roots_near_miss() {
        let device = Device::default();
        let f = |r: &[f32]| r[0].sqrt();
        let (train, valid) = (rows(64, 2, (1.0, 2.0), 1, f), rows(64, 2, (1.0, 2.0), 2, f));
        let next = std::cell::Cell::new(0);
        let init = |d: &Device| {
            let near = next.replace(next.get() + 1) == 1;
            let mut unit = crate::NacMulConfig::new(2, 1).init(d);
            // W = tanh(Ŵ)·σ(M̂): 0.499 and 0 (σ(−40) < 1e-17).
            unit.nac.w_hat = burn::module::Param::from_data([[0.499f32.atanh()], [0.0]], d);
            unit.nac.m_hat = burn::module::Param::from_data([[40.0f32], [-40.0]], d);
            if near { unit } else { unit.snap_halves() }
        };
        let recipe = plateau_recipe();
        let mut training = Vec::new();
        let mut log = |p: &FitProgress| training.push(p.training);
        fit_with_progress(init, &train, &valid, &recipe, &device, &mut log).unwrap();
        assert_eq!(training, [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    }

    /// The same fit twice from one seed is the same model, to the bit.
    #[test]
    fn a_fit_is_deterministic_in_its_seed() {
        let device = Device::default();
        let f = |r: &[f32]| r[0] + r[1];
        let (train, valid) = (rows(64, 4, (1.0, 2.0), 1, f), rows(32, 4, (1.0, 2.0), 2, f));
        let recipe = Recipe::new()
            .with_inits(2)
            .with_steps(50)
            .with_eval_every(10)
            .with_seed(9);
        let init = |d: &Device| {
            crate::Stack::new(NauConfig::new(4, 2).init(d), NauConfig::new(2, 1).init(d))
        };
        let mut seen = Vec::new();
        let mut log = |p: &FitProgress| seen.push((p.step, p.steps, p.training));
        let a = fit_with_progress(init, &train, &valid, &recipe, &device, &mut log).unwrap();
        // One call per evaluation, every 10 of the 50 steps, both initialisations training.
        let want: Vec<_> = (1..=5).map(|k| (10 * k, 50, 2)).collect();
        assert_eq!(seen, want);
        let b = fit(init, &train, &valid, &recipe, &device).unwrap();
        let weights = |m: &crate::Stack<Nau, Nau>| {
            values(m)
                .into_iter()
                .flat_map(|v| v.into_data().try_to_vec::<f32>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(weights(&a.model), weights(&b.model));
        assert_eq!(a.inits_valid_mse, b.inits_valid_mse);
    }

    /// Data and settings a fit cannot use are refused before any training, saying what is wrong.
    #[test]
    fn bad_input_is_refused_by_name() {
        let device = Device::default();
        let f = |r: &[f32]| r[0];
        let train = rows(64, 4, (1.0, 2.0), 1, f);
        let err = |train: &Rows, valid: &Rows, recipe: &Recipe| {
            fit(nau_nmu, train, valid, recipe, &device)
                .unwrap_err()
                .to_string()
        };
        let recipe = Recipe::new();
        let empty = Rows {
            x: vec![],
            y: vec![],
            ..train.clone()
        };
        assert_eq!(err(&train, &empty, &recipe), "validation rows: no rows");
        let mut nan = train.clone();
        nan.y[5] = f32::NAN;
        let want = "training rows: target NaN in row 5, column 0: values must be finite";
        assert_eq!(err(&nan, &train, &recipe), want);
        let narrow = rows(64, 3, (1.0, 2.0), 2, f);
        assert!(
            err(&train, &narrow, &recipe)
                .contains("training rows have 4 inputs and 1 outputs, validation rows 3 and 1")
        );
        let e = err(&narrow, &narrow, &recipe);
        assert!(
            e.starts_with("rows of width 3 do not fit the model") && e.contains('4'),
            "{e}"
        );
        let few = rows(8, 4, (1.0, 2.0), 2, f);
        assert!(err(&few, &few, &recipe).contains("8 training rows for a model of 10 parameters"));
        assert_eq!(
            err(&train, &train, &recipe.clone().with_inits(0)),
            "Recipe.inits must be at least 1, got 0"
        );
        assert_eq!(
            err(&train, &train, &Recipe::new().with_lr(f64::NAN)),
            "Recipe.lr must be finite and greater than 0, got NaN"
        );
    }

    /// Targets whose squared error overflows f32 turn every initialisation's loss infinite at
    /// the first step: each stops there, reported with its step, and the fit keeps the best
    /// checkpoint it had (the initial weights, whose validation MSE, summed in f64, is finite).
    #[test]
    fn initialisations_that_diverge_are_reported_and_keep_their_best_checkpoint() {
        let device = Device::default();
        let f = |r: &[f32]| r[0] * 1e30;
        let train = rows(64, 4, (1.0, 2.0), 1, f);
        let recipe = Recipe::new()
            .with_inits(2)
            .with_steps(20)
            .with_eval_every(10);
        let fitted = fit(nau_nmu, &train, &train, &recipe, &device).unwrap();
        assert_eq!(fitted.diverged, [Some(1), Some(1)]);
        assert_eq!((fitted.best_step, fitted.steps), (0, 1));
        assert!(fitted.plain_valid_mse.is_finite());
    }
}
