//! The improved NALU (iNALU) of Schlör, Ring & Hotho 2020, "iNALU: Improved Neural Arithmetic
//! Logic Unit".

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Distribution, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, Levels, NotDiscrete, SnapOptions, SnappedWeights,
};
use crate::nac::Nac;
use crate::{ArithmeticUnit, ops};

/// Configuration to create an [`Inalu`] layer using the [init function](InaluConfig::init).
#[derive(Config, Debug)]
pub struct InaluConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// `ε` in `log(max(|x|, ε))`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// `ω`, the cap on the log-space sum, so that `m ≤ exp(ω)`.
    #[config(default = 20.0)]
    pub omega: f64,
}

/// Improved NALU: separate weights for the two paths, a capped multiplicative path that
/// recovers the sign of its result, and a gate that does not depend on the input.
///
/// With `W_a = tanh(Ŵ_a) ⊙ σ(M̂_a)` and `W_m = tanh(Ŵ_m) ⊙ σ(M̂_m)`:
///
/// - `a = x·W_a`
/// - `m = exp(min(log(max(|x|, ε))·W_m, ω))`
/// - `s_j = clip(Π_i (sign(x_i)·|W_m,ij| + 1 − |W_m,ij|), −1, 1)`
/// - `g = σ(G)`, one gate per output
/// - `y = g⊙a + (1 − g)⊙m⊙s`
///
/// Its regulariser ([`Inalu::regularizer`]) pushes every parameter away from 0, towards the
/// saturated values where the weights are exactly −1, 0 or 1; [`StallDetector`] and
/// [`Inalu::reinitialize`] restart a run whose loss stopped improving, as the paper does.
/// Initialised as the authors' code: `Ŵ ~ N(0.88, 0.2)`, `M̂ ~ N(0.5, 0.2)`, `G ~ N(0, 0.2)`.
///
/// Should be created with [`InaluConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Inalu {
    /// `Ŵ_a`, `M̂_a` of the additive path.
    pub add: Nac,
    /// `Ŵ_m`, `M̂_m` of the multiplicative path.
    pub mul: Nac,
    /// `G`, shape `[d_output]`.
    pub gate: Param<Tensor<1>>,
    epsilon: f64,
    omega: f64,
}

impl InaluConfig {
    /// Checks the config: sizes at least 1, `epsilon` and `omega` finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("InaluConfig", "d_input", self.d_input)?;
        ConfigError::check_size("InaluConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("InaluConfig", "epsilon", self.epsilon)?;
        ConfigError::check_positive("InaluConfig", "omega", self.omega)
    }

    /// Initialises a new [`Inalu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`InaluConfig::validate`].
    pub fn init(&self, device: &Device) -> Inalu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let shape = [self.d_input, self.d_output];
        let normal = |mean| Initializer::Normal { mean, std: 0.2 };
        let nac = || Nac {
            w_hat: ops::init::param(&normal(0.88), shape, None, None, device),
            m_hat: ops::init::param(&normal(0.5), shape, None, None, device),
        };
        Inalu {
            add: nac(),
            mul: nac(),
            gate: ops::init::param(&normal(0.0), [self.d_output], None, None, device),
            epsilon: self.epsilon,
            omega: self.omega,
        }
    }
}

impl Inalu {
    /// `y = g⊙a + (1 − g)⊙m⊙s` (see the type's documentation for `a`, `m`, `s`, `g`).
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the layer and both sizes.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// The sparsity regulariser `Σ_p mean(max(t − |p|, 0)) / t` over `Ŵ_a, M̂_a, Ŵ_m, M̂_m, G`,
    /// with `t` = 20: 0 once every parameter is saturated (`|p| ≥ t`),
    /// where the weights are exactly −1, 0 or 1 and the gate exactly 0 or 1.
    pub fn regularizer(&self) -> Tensor<1> {
        self.saturation(1)
    }

    /// The regulariser of each of `members` stacked copies.
    fn saturation(&self, members: usize) -> Tensor<1> {
        let t = ops::INALU_REGULARIZER_THRESHOLD;
        let inside = |p: Tensor<2>| p.abs().neg().add_scalar(t).clamp_min(0.0);
        let term = |p: &Param<Tensor<2>>| ops::member_mean(inside(p.val()), members);
        let gate = self.gate.val().unsqueeze_dim::<2>(1);
        [
            &self.add.w_hat,
            &self.add.m_hat,
            &self.mul.w_hat,
            &self.mul.m_hat,
        ]
        .into_iter()
        .map(term)
        .fold(ops::member_mean(inside(gate), members), Tensor::add)
        .div_scalar(t)
    }

    /// Draws every parameter afresh, uniform in [−2, 2] (the authors' restart), from the
    /// device's random generator. Parameter ids are kept, so optimizer state carries over.
    pub fn reinitialize(self) -> Self {
        let redraw2 = |p: Param<Tensor<2>>| ops::redraw_param(p, Distribution::Uniform(-2.0, 2.0));
        Self {
            add: Nac {
                w_hat: redraw2(self.add.w_hat),
                m_hat: redraw2(self.add.m_hat),
            },
            mul: Nac {
                w_hat: redraw2(self.mul.w_hat),
                m_hat: redraw2(self.mul.m_hat),
            },
            gate: ops::redraw_param(self.gate, Distribution::Uniform(-2.0, 2.0)),
            ..self
        }
    }

    /// `ε` in `log(max(|x|, ε))`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// `ω`, the cap on the log-space sum.
    pub fn omega(&self) -> f64 {
        self.omega
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.add.d_input()
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.add.d_output()
    }
}

impl ArithmeticUnit for Inalu {
    const REGULARIZED: bool = true;

    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let d_in = self.add.d_input_of(members);
        ops::check_input("Inalu", &input.dims(), d_in, members);
        let w_m = self.mul.weight();
        let add = ops::matmul_members(input.clone(), self.add.weight(), members);
        let log = ops::clamped_log_abs(input.clone(), self.epsilon);
        let mul = ops::matmul_members(log, w_m.clone(), members)
            .clamp_max(self.omega)
            .exp();
        let sign = ops::nmu_product_members(input.sign(), w_m.abs(), members).clamp(-1.0, 1.0);
        let gate = ops::per_feature::<D>(ops::sigmoid(self.gate.val()), members);
        ops::gated_mix(gate, add, mul.mul(sign))
    }

    fn regularizer_members(&self, members: usize) -> Option<Tensor<1>> {
        Some(self.saturation(members))
    }

    /// Snaps `W_a` and `W_m` to −1, 0 or 1 and the gate to a hard decision (`G` times 1e8,
    /// `σ(G)` exactly 0 or 1 wherever `|G| > 1e-5`). An iNALU a few ε from `a + b`, its gate
    /// near 1, leaks `(1 − g)·m·s` through its multiplicative path, which explodes on larger
    /// inputs: its weights read back as the sum while it extrapolates at 10³ MSE.
    fn snap(self) -> Self {
        let gate = ops::replace_value(self.gate, |t| t.mul_scalar(ops::GATE_SNAP));
        Self {
            add: self.add.snap(),
            mul: self.mul.snap(),
            gate,
            ..self
        }
    }
}

impl Discretize for Inalu {
    /// `W_a` and `W_m` snapped to {−1, 0, 1}; per output, the additive path `Σ_i W_a,ij·x_i`
    /// where the gate `σ(G_j)` is ≈ 1, the multiplicative path where it is ≈ 0, an obstacle
    /// otherwise. With `W_m` in {−1, 0, 1} the sign recovery gives each factor its sign back,
    /// `sign(x_i)^|W|·|x_i|^W = x_i^W`, so the path reads `Π_i x_i^{W_m,ij}` (of the inputs, not
    /// their magnitudes); the cap `ω` and the floor `ε` are left out, as the NALU's `ε`. The
    /// weights of a path the gate shuts do not change the function and are not read.
    fn discretize(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let gate = ops::sigmoid(self.gate.val()).into_data().convert::<f64>();
        let gate = gate.try_to_vec::<f64>().expect("f64 after convert");
        let tol = options.gate_tolerance;
        let (mut add, mut mul) = (
            SnappedWeights::new(self.add.weight(), Levels::SignedUnit, options),
            SnappedWeights::new(self.mul.weight(), Levels::SignedUnit, options),
        );
        add.keep_columns(&gate.iter().map(|&g| g > tol).collect::<Vec<_>>());
        mul.keep_columns(&gate.iter().map(|&g| g < 1.0 - tol).collect::<Vec<_>>());
        let (sums, products) = (add.sums(inputs), mul.products(inputs, false));
        let (add, mul) = (add.into_layer(sums), mul.into_layer(products));
        let mut obstacles = [add.obstacles, mul.obstacles].concat();
        let mut outputs = Vec::new();
        let paths = add.outputs.into_iter().zip(mul.outputs).zip(&gate);
        for (j, ((a, m), &g)) in paths.enumerate() {
            outputs.push(match (g >= 1.0 - tol, g <= tol) {
                (true, _) => a,
                (_, true) => m,
                _ => {
                    let (layer, range) = (String::new(), (g, g));
                    obstacles.push(NotDiscrete::Gate {
                        layer,
                        output: j,
                        range,
                    });
                    Expr::weighted_sum([])
                }
            });
        }
        let support = (add.support.into_iter().zip(mul.support))
            .map(|(a, m)| {
                let mut both = [a, m].concat();
                both.sort_unstable();
                both.dedup();
                both
            })
            .collect();
        Ok(LayerSnap {
            outputs,
            support,
            sparsity_error: add.sparsity_error.max(mul.sparsity_error),
            obstacles,
        })
    }
}

impl ModuleDisplay for Inalu {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        ops::inline_display()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("d_input", &self.d_input())
            .add("d_output", &self.d_output())
            .add("epsilon", &self.epsilon)
            .add("omega", &self.omega)
            .optional()
    }
}

/// Decides when an iNALU run has stalled and should restart from fresh weights.
///
/// The authors' rule, checked every `every_epochs` epochs once at least `min_losses` step
/// losses are recorded: the run has stalled when the mean loss of the older half of the record
/// is no better than the mean of the newer half plus its standard deviation, while that newer
/// mean is still above `threshold`. A restart clears the record.
#[derive(Clone, Debug)]
pub struct StallDetector {
    every_epochs: usize,
    min_losses: usize,
    threshold: f64,
    losses: Vec<f64>,
}

impl StallDetector {
    /// A detector with the given check period, minimum record and loss threshold.
    pub fn new(every_epochs: usize, min_losses: usize, threshold: f64) -> Self {
        Self {
            every_epochs: every_epochs.max(1),
            min_losses,
            threshold,
            losses: Vec::new(),
        }
    }

    /// The losses recorded since the last restart (a training checkpoint keeps them).
    #[doc(hidden)]
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }

    /// Takes up the losses [`StallDetector::losses`] gave.
    #[doc(hidden)]
    pub fn set_losses(&mut self, losses: Vec<f64>) {
        self.losses = losses;
    }

    /// Records the loss of one training step.
    pub fn record(&mut self, loss: f64) {
        self.losses.push(loss);
    }

    /// Call after each epoch: `true` when the run should restart (the record is then cleared).
    pub fn stalled(&mut self, epoch: usize) -> bool {
        if !epoch.is_multiple_of(self.every_epochs) || self.losses.len() < self.min_losses.max(2) {
            return false;
        }
        let (older, newer) = self.losses.split_at(self.losses.len() / 2);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (m_old, m_new) = (mean(older), mean(newer));
        let std_new =
            (newer.iter().map(|l| (l - m_new).powi(2)).sum::<f64>() / newer.len() as f64).sqrt();
        let stalled = m_old <= m_new + std_new && m_new > self.threshold;
        if stalled {
            self.losses.clear();
        }
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAT: f32 = 40.0;

    /// An iNALU whose `W_a` and `W_m` equal the given patterns (entries in {−1, −½, 0, ½, 1})
    /// exactly, with the gate saturated open (`gate > 0`) or closed.
    fn inalu(w_a: [[f32; 1]; 2], w_m: [[f32; 1]; 2], gate: f32, device: &Device) -> Inalu {
        let mut layer = InaluConfig::new(2, 1).init(device);
        let nac = |w: [[f32; 1]; 2]| Nac {
            // A 0 weight comes from σ(M̂) = 0 and a ½ from σ(0); Ŵ stays saturated (as the
            // regulariser wants).
            w_hat: Param::from_data(
                w.map(|r| r.map(|v| if v < 0.0 { -SAT } else { SAT })),
                device,
            ),
            m_hat: Param::from_data(
                w.map(|r| {
                    r.map(|v| match v.abs() {
                        0.0 => -SAT,
                        0.5 => 0.0,
                        _ => SAT,
                    })
                }),
                device,
            ),
        };
        layer.add = nac(w_a);
        layer.mul = nac(w_m);
        layer.gate = Param::from_data([gate], device);
        layer
    }

    fn run(layer: &Inalu, rows: [[f32; 2]; 4], device: &Device) -> Vec<f32> {
        let y = layer.forward(Tensor::<2>::from_data(rows, device));
        y.into_data().try_to_vec::<f32>().unwrap()
    }

    const ROWS: [[f32; 2]; 4] = [[3.0, 4.0], [-2.0, 5.0], [-1.5, -8.0], [0.5, -0.25]];

    /// Within 1e-4 relative: the log path rounds logs of inputs below 10 and their 2-term sum
    /// by a few ulp, about 1e-6 in the exponent and hence relatively in the product.
    fn assert_rel(got: &[f32], expected: impl Iterator<Item = f32>) {
        for (g, e) in got.iter().zip(expected) {
            assert!(((g - e) / e).abs() < 1e-4, "got {g}, expected {e}");
        }
    }

    #[test]
    fn closed_gate_multiplies_and_divides_with_signs() {
        let device = Device::default();
        let mul = inalu([[0.0], [0.0]], [[1.0], [1.0]], -SAT, &device);
        assert_rel(&run(&mul, ROWS, &device), ROWS.iter().map(|r| r[0] * r[1]));
        let div = inalu([[0.0], [0.0]], [[1.0], [-1.0]], -SAT, &device);
        assert_rel(&run(&div, ROWS, &device), ROWS.iter().map(|r| r[0] / r[1]));
    }

    #[test]
    fn open_gate_adds_and_subtracts() {
        let device = Device::default();
        let sub = inalu([[1.0], [-1.0]], [[1.0], [1.0]], SAT, &device);
        assert_rel(&run(&sub, ROWS, &device), ROWS.iter().map(|r| r[0] - r[1]));
    }

    /// The formula of one layer on `ROWS`, as `x0`, `x1`.
    fn formula(layer: &Inalu, device: &Device) -> Result<String, FormulaError> {
        let x = Tensor::<2>::from_data(ROWS, device);
        let f = crate::formula::extract(
            &[layer as &dyn crate::formula::FormulaLayer],
            x,
            &SnapOptions::default(),
        )?;
        Ok(f.render(&crate::formula::Naming::new()))
    }

    #[test]
    fn reads_back_the_path_its_gate_takes_with_signs() {
        let device = Device::default();
        // The shut path's weights (½, off every level) are not read.
        let sub = inalu([[1.0], [-1.0]], [[0.5], [0.5]], SAT, &device);
        assert_eq!(formula(&sub, &device).unwrap(), "x0 − x1");
        let div = inalu([[0.5], [0.5]], [[1.0], [-1.0]], -SAT, &device);
        assert_eq!(formula(&div, &device).unwrap(), "x0 / x1");
        let mul = inalu([[0.5], [0.0]], [[1.0], [1.0]], -SAT, &device);
        assert_eq!(formula(&mul, &device).unwrap(), "x0·x1");
    }

    #[test]
    fn an_open_gate_or_an_undecided_weight_is_an_obstacle() {
        let device = Device::default();
        let half_open = inalu([[1.0], [-1.0]], [[1.0], [1.0]], 0.0, &device);
        let Err(FormulaError::NotDiscrete { obstacles, .. }) = formula(&half_open, &device) else {
            panic!("a gate at ½ reads back")
        };
        assert!(
            matches!(obstacles[..], [NotDiscrete::Gate { output: 0, range, .. }] if range == (0.5, 0.5)),
            "{obstacles:?}"
        );
        let undecided = inalu([[1.0], [0.5]], [[1.0], [1.0]], SAT, &device);
        let Err(FormulaError::NotDiscrete { sparsity_error, .. }) = formula(&undecided, &device)
        else {
            panic!("a weight of ½ on the taken path reads back")
        };
        assert_eq!(sparsity_error, 0.5);
    }

    /// A near miss of `x0 − x1` (weights ±0.945, gate σ(6) ≈ 0.9975, which leaks the
    /// multiplicative path) misses it; snapped, it is `x0 − x1` to the bit (small binary
    /// fractions: the one subtraction is exact, and the shut path adds exactly 0).
    #[test]
    fn snap_makes_a_near_miss_exact() {
        let device = Device::default();
        let mut near = inalu([[1.0], [-1.0]], [[1.0], [1.0]], 6.0, &device);
        // tanh(2)·σ(3.9) ≈ 0.964·0.980: inside the snap's rounding to ±1.
        near.add.w_hat = Param::from_data([[2.0], [-2.0]], &device);
        near.add.m_hat = Param::from_data([[3.9], [3.9]], &device);
        let exact: Vec<f32> = ROWS.iter().map(|r| r[0] - r[1]).collect();
        let before = run(&near, ROWS, &device);
        assert!(before.iter().zip(&exact).all(|(b, e)| (b - e).abs() > 1e-3));
        assert_eq!(run(&near.snap(), ROWS, &device), exact);
    }

    #[test]
    fn multiplicative_path_is_capped_at_exp_omega() {
        let device = Device::default();
        let layer = inalu([[0.0], [0.0]], [[1.0], [1.0]], -SAT, &device);
        let y = run(
            &layer,
            [[1e6, 1e6], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
            &device,
        );
        // exp(20) in f32 within a few ulp (1e-6 relative).
        assert!((y[0] / 20f32.exp() - 1.0).abs() < 1e-4, "{}", y[0]);
    }

    #[test]
    fn regularizer_is_zero_when_saturated_and_positive_between() {
        let device = Device::default();
        let saturated = inalu([[1.0], [-1.0]], [[0.0], [1.0]], SAT, &device);
        assert_eq!(saturated.regularizer().into_scalar::<f32>(), 0.0);
        let mut between = saturated;
        between.gate = Param::from_data([10.0f32], &device);
        // Only G = 10 is inside: max(20 − 10, 0) / 20 = 0.5.
        assert_eq!(between.regularizer().into_scalar::<f32>(), 0.5);
    }

    #[test]
    fn reinitialize_redraws_every_parameter_in_range() {
        let device = Device::default();
        let layer = InaluConfig::new(3, 2).init(&device).reinitialize();
        for p in [
            &layer.add.w_hat,
            &layer.add.m_hat,
            &layer.mul.w_hat,
            &layer.mul.m_hat,
        ] {
            p.to_data().assert_within_range(-2.0..2.0);
        }
        layer.gate.to_data().assert_within_range(-2.0..2.0);
        assert_ne!(layer.add.w_hat.to_data(), layer.mul.w_hat.to_data());
    }

    #[test]
    fn stall_detector_fires_on_a_flat_high_loss_only() {
        let mut flat = StallDetector::new(10, 20, 1.0);
        (0..40).for_each(|_| flat.record(5.0));
        assert!(!flat.stalled(9), "only every 10 epochs");
        assert!(flat.stalled(10));
        assert!(!flat.stalled(20), "the record was cleared");

        let mut improving = StallDetector::new(10, 20, 1.0);
        (0..40).for_each(|i| improving.record(100.0 - 2.0 * i as f64));
        assert!(!improving.stalled(10));

        let mut solved = StallDetector::new(10, 20, 1.0);
        (0..40).for_each(|_| solved.record(1e-6));
        assert!(!solved.stalled(10), "low loss is not a stall");
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert_eq!(
            InaluConfig::new(2, 1)
                .with_omega(0.0)
                .validate()
                .unwrap_err()
                .to_string(),
            "InaluConfig.omega must be finite and greater than 0, got 0"
        );
    }
}
