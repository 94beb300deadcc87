//! The neural arithmetic logic unit (NALU) of Trask et al. 2018, "Neural Arithmetic Logic Units".

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;
use crate::formula::{
    Discretize, Expr, FormulaError, LayerSnap, Levels, NotDiscrete, SnapOptions, SnappedWeights,
    column_ranges,
};
use crate::nac::{Nac, NacConfig, init_matrix};
use crate::{ArithmeticUnit, ops};

/// Configuration to create a [`Nalu`] layer using the [init function](NaluConfig::init).
#[derive(Config, Debug)]
pub struct NaluConfig {
    /// The size of the input features.
    pub d_input: usize,
    /// The size of the output features.
    pub d_output: usize,
    /// Mix the additive and multiplicative paths with a learned gate, as in the paper. When
    /// false, the layer outputs their sum `a + m`.
    #[config(default = true)]
    pub use_gating: bool,
    /// `ε` in `log(|x| + ε)`; keeps the logarithm finite at `x = 0`.
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// How `Ŵ`, `M̂` and `G` are initialised. Xavier-uniform (gain 1) matches the Keras
    /// reference's `glorot_uniform`.
    #[config(default = "Initializer::XavierUniform { gain: 1.0 }")]
    pub initializer: Initializer,
    /// How `G` is initialised when it should differ from `Ŵ` and `M̂` (`None`: as they are).
    #[config(default = "None")]
    pub gate_initializer: Option<Initializer>,
    /// The base `b` of the exponentials in `tanh`, `σ` and the gate: `tanh_b(z) = tanh(z·ln b)`,
    /// `σ_b(z) = σ(z·ln b)`. `e` is the NALU; the golden ratio [`GOLDEN_RATIO`] is Mistry et
    /// al.'s G-NALU ("A Primer for Neural Arithmetic Logic Modules", 2022), whose gentler
    /// slopes slow the saturation of `W` and `g`. The multiplicative path `b^(log_b(|x| + ε)·W)`
    /// is the same in every base.
    #[config(default = "std::f64::consts::E")]
    pub base: f64,
}

/// The golden ratio `φ = (1 + √5)/2`, the [`NaluConfig::base`] of the G-NALU.
pub const GOLDEN_RATIO: f64 = 1.618_033_988_749_895;

/// Neural arithmetic logic unit: a [`Nac`] applied once in linear space (addition,
/// subtraction) and once in log space (multiplication, division, powers), mixed by a gate.
///
/// With `W = tanh(Ŵ) ⊙ σ(M̂)` shared by both paths:
///
/// - `a = x·W`
/// - `m = exp(log(|x| + ε)·W)`
/// - gated (default): `g = σ(x·G)`, `y = g⊙a + (1 − g)⊙m`
/// - ungated: `y = a + m`
///
/// The multiplicative path sees only `|x|`: it cannot produce negative results.
///
/// With another [`base`](NaluConfig::base) `b`, `tanh`, `σ` and the gate's `σ` read their
/// arguments times `ln b` (the G-NALU: `b = φ`).
///
/// Should be created with [`NaluConfig`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct Nalu {
    /// The accumulator holding `Ŵ` and `M̂`, shared by the additive and multiplicative paths.
    pub nac: Nac,
    /// The gate weights `G`, shape `[d_input, d_output]`; present exactly when gating is on.
    pub gate: Option<Param<Tensor<2>>>,
    epsilon: f64,
    /// `ln b` of the [`base`](NaluConfig::base) `b`: 1 for the NALU.
    log_base: f64,
}

impl NaluConfig {
    /// Checks the config: both sizes must be at least 1, `epsilon` finite and positive, and
    /// `base` finite and greater than 1 (1 would flatten `tanh` and `σ` to constants, a base
    /// below 1 flip their signs).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ConfigError::check_size("NaluConfig", "d_input", self.d_input)?;
        ConfigError::check_size("NaluConfig", "d_output", self.d_output)?;
        ConfigError::check_positive("NaluConfig", "epsilon", self.epsilon)?;
        if !(self.base.is_finite() && self.base > 1.0) {
            let reason = format!("must be finite and greater than 1, got {}", self.base);
            return Err(ConfigError::new("NaluConfig", "base", reason));
        }
        Ok(())
    }

    /// Initialises a new [`Nalu`] on `device`.
    ///
    /// # Panics
    ///
    /// On an invalid config, with the message of [`NaluConfig::validate`].
    pub fn init(&self, device: &Device) -> Nalu {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        let nac = NacConfig::new(self.d_input, self.d_output)
            .with_initializer(self.initializer.clone())
            .init(device);
        let gate_init = self.gate_initializer.as_ref().unwrap_or(&self.initializer);
        let gate = self
            .use_gating
            .then(|| init_matrix(gate_init, self.d_input, self.d_output, device));
        Nalu {
            nac,
            gate,
            epsilon: self.epsilon,
            log_base: self.base.ln(),
        }
    }
}

impl Nalu {
    /// Gated: `y = g⊙a + (1 − g)⊙m` with `g = σ(x·G)`; ungated: `y = a + m`; where
    /// `a = x·W`, `m = exp(log(|x| + ε)·W)` and `W = tanh(Ŵ) ⊙ σ(M̂)`.
    ///
    /// `W` is computed once per call and shared by both paths.
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]` (any rank, e.g. `[batch, d_input]` or `[batch, time, d_input]`)
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    ///
    /// If the last axis of `input` is not `d_input`; the message names the layer and both sizes.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.forward_members(input, 1)
    }

    /// The shared effective weight `W = tanh(Ŵ) ⊙ σ(M̂)` (in another base `b`,
    /// `tanh(Ŵ·ln b) ⊙ σ(M̂·ln b)`).
    pub fn weight(&self) -> Tensor<2> {
        let (w_hat, m_hat) = self.scaled(self.nac.w_hat.val(), self.nac.m_hat.val());
        ops::nac_weight(w_hat, m_hat)
    }

    /// The base `b` of `tanh`, `σ` and the gate: `e` for the NALU, `φ` for the G-NALU.
    pub fn base(&self) -> f64 {
        self.log_base.exp()
    }

    /// `ln b`, the factor the base puts on every argument of `tanh` and `σ`: 1 for the NALU.
    pub fn log_base(&self) -> f64 {
        self.log_base
    }

    /// `(a·ln b, c·ln b)`, or the tensors themselves in base `e` (no op on the hot path).
    fn scaled(&self, a: Tensor<2>, c: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self.log_base {
            1.0 => (a, c),
            s => (a.mul_scalar(s), c.mul_scalar(s)),
        }
    }

    /// The gate `g = σ_b(x·G)` on the rows of `x` (a gated layer).
    fn gate_on(&self, gate: &Param<Tensor<2>>, x: &Tensor<2>) -> Tensor<2> {
        let logit = ops::matmul_members(x.clone(), gate.val(), 1);
        ops::sigmoid(logit.mul_scalar(self.log_base))
    }

    /// Whether the layer mixes its paths with a gate (`gate` is present).
    pub fn use_gating(&self) -> bool {
        self.gate.is_some()
    }

    /// `ε` in `log(|x| + ε)`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The size of the input features.
    pub fn d_input(&self) -> usize {
        self.nac.d_input()
    }

    /// The size of the output features.
    pub fn d_output(&self) -> usize {
        self.nac.d_output()
    }

    /// `W` rounded to the nearest multiple of `1/steps` in [−1, 1], the gate decided.
    fn snapped(self, steps: f64) -> Self {
        let gate = (self.gate).map(|g| ops::replace_value(g, |t| t.mul_scalar(ops::GATE_SNAP)));
        let (w_hat, m_hat) = ops::snap_nac(self.nac.w_hat, self.nac.m_hat, self.log_base, steps);
        Self {
            nac: Nac { w_hat, m_hat },
            gate,
            ..self
        }
    }
}

impl ArithmeticUnit for Nalu {
    fn forward_members<const D: usize>(&self, input: Tensor<D>, members: usize) -> Tensor<D> {
        let d_in = self.nac.d_input_of(members);
        ops::check_input("Nalu", &input.dims(), d_in, members);
        let (w_hat, m_hat) = self.scaled(self.nac.w_hat.val(), self.nac.m_hat.val());
        let eps = self.epsilon;
        match &self.gate {
            Some(g) => {
                let g = g.val();
                let g = if self.log_base == 1.0 {
                    g
                } else {
                    g.mul_scalar(self.log_base)
                };
                ops::gated_nalu_members(input, w_hat, m_hat, g, eps, members)
            }
            None => {
                let weight = ops::nac_weight(w_hat, m_hat);
                let add = ops::matmul_members(input.clone(), weight.clone(), members);
                add.add(ops::log_space_matmul(input, weight, eps, members))
            }
        }
    }

    /// Snaps `W` to −1, 0 or 1, and the gate to a hard decision: `G` times 1e8, so
    /// that `σ(x·G)` is exactly 0 or 1 wherever `|x·G| > 1e-5`. A NALU a few ε from `a + b`
    /// (weights near 1, gate near 1) leaks `(1 − g)·m` through the multiplicative path, which
    /// snapped weights alone leave open.
    fn snap(self) -> Self {
        self.snapped(1.0)
    }

    /// [`snap`](ArithmeticUnit::snap) with `W` to the nearest multiple of ½: the
    /// multiplicative path's `√a`.
    fn snap_halves(self) -> Self {
        self.snapped(2.0)
    }
}

impl Discretize for Nalu {
    /// `W` snapped to {−1, 0, 1}. Gated: per output, the additive path where the gate is ≈ 1
    /// on all rows of `x`, the multiplicative path where it is ≈ 0, an obstacle otherwise.
    /// Ungated: the sum of both paths.
    fn discretize(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.weight(), Levels::SignedUnit, options);
        let (add, mul) = (w.sums(inputs), w.products(inputs, true));
        let Some(gate) = &self.gate else {
            let both = add.into_iter().zip(mul);
            let outputs = both.map(|(a, m)| Expr::weighted_sum([(1, a), (1, m)]));
            return Ok(w.into_layer(outputs.collect()));
        };
        let g = self.gate_on(gate, x);
        let tol = options.gate_tolerance;
        let mut open = Vec::new();
        let outputs = (add.into_iter().zip(mul).zip(column_ranges(g)).enumerate())
            .map(
                |(j, ((a, m), (lo, hi)))| match (lo >= 1.0 - tol, hi <= tol) {
                    (true, _) => a,
                    (_, true) => m,
                    _ => {
                        open.push(NotDiscrete::Gate {
                            layer: String::new(),
                            output: j,
                            range: (lo, hi),
                        });
                        Expr::weighted_sum([])
                    }
                },
            )
            .collect();
        let mut layer = w.into_layer(outputs);
        layer.obstacles.extend(open);
        Ok(layer)
    }

    /// `W` where every output's gate is shut to the additive path (`g ≥ 1 − tolerance` on every
    /// row of `x`): there the layer is `x·W`.
    fn linear_map_on(&self, x: &Tensor<2>, options: &SnapOptions) -> Option<Tensor<2>> {
        let g = self.gate_on(self.gate.as_ref()?, x);
        let additive = column_ranges(g)
            .into_iter()
            .all(|(lo, _)| lo >= 1.0 - options.gate_tolerance);
        additive.then(|| self.weight())
    }
}

impl ModuleDisplay for Nalu {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        ops::inline_display()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("d_input", &self.d_input())
            .add("d_output", &self.d_output())
            .add("use_gating", &self.use_gating())
            .add("epsilon", &self.epsilon)
            .add("base", &self.base())
            .optional()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// Large enough that `tanh`, `σ` and the gate saturate exactly in f32.
    const SAT: f32 = 40.0;

    /// A NALU whose `W` equals `pattern` (`[d_input][d_output]`, entries in {0, ±½, ±1})
    /// exactly, and whose gate is fully open (`gate_logit > 0`: additive path) or fully closed
    /// (`< 0`: multiplicative path) for positive inputs; `None` builds an ungated layer.
    fn nalu_with<const I: usize, const O: usize>(
        pattern: [[f32; O]; I],
        gate_logit: Option<f32>,
        device: &Device,
    ) -> Nalu {
        let mut nalu = NaluConfig::new(I, O)
            .with_use_gating(gate_logit.is_some())
            .init(device);
        // tanh(±SAT) = ±1, σ(SAT) = 1 and σ(0) = ½ exactly in f32; σ(−SAT) < 1e-17.
        let w_hat = pattern.map(|row| row.map(|w| w.signum() * SAT));
        let m_hat = pattern.map(|row| {
            row.map(|w| match w.abs() {
                0.0 => -SAT,
                0.5 => 0.0,
                _ => SAT,
            })
        });
        nalu.nac.w_hat = Param::from_data(w_hat, device);
        nalu.nac.m_hat = Param::from_data(m_hat, device);
        nalu.gate = gate_logit.map(|g| Param::from_data([[g; O]; I], device));
        nalu
    }

    /// Largest relative error of `got` against `expected`.
    ///
    /// The tests below allow 1e-4: a product path `exp(Σ W·log(|x| + ε))` of two inputs up to
    /// 250 rounds its logs (|log| < 6) and their sum by a few ulp each, about 1e-6 in the
    /// exponent, hence relatively in the product; ε = 1e-7 moves an input of 0.01 by 1e-5.
    fn max_rel_err(got: Tensor<2>, expected: &[f32]) -> f32 {
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), expected.len());
        got.iter()
            .zip(expected)
            .map(|(g, e)| ((g - e) / e).abs())
            .fold(0.0, f32::max)
    }

    const ROWS: [[f32; 2]; 4] = [[3.0, 4.0], [0.5, 8.0], [12.5, 0.2], [0.01, 250.0]];

    fn inputs(device: &Device) -> Tensor<2> {
        Tensor::from_data(ROWS, device)
    }

    fn expect(op: fn([f32; 2]) -> f32) -> Vec<f32> {
        ROWS.iter().map(|&r| op(r)).collect()
    }

    // The gate logit is `x·G`; with all of `G` at −1e4 it is below −200 for every positive row
    // used here (row sums ≥ 0.02), so the gate is exactly 0 in f32 and the output is the
    // multiplicative path alone (exactly 1 and the additive path for +1e4).
    const CLOSED: Option<f32> = Some(-1e4);
    const OPEN: Option<f32> = Some(1e4);

    #[test]
    fn closed_gate_multiplies_divides_and_takes_roots() {
        let device = Device::default();
        type Case = ([[f32; 1]; 2], fn([f32; 2]) -> f32);
        let cases: [Case; 3] = [
            ([[1.0], [1.0]], |r| r[0] * r[1]),
            ([[1.0], [-1.0]], |r| r[0] / r[1]),
            ([[0.5], [0.0]], |r| r[0].sqrt()),
        ];
        for (pattern, op) in cases {
            let nalu = nalu_with(pattern, CLOSED, &device);
            let err = max_rel_err(nalu.forward(inputs(&device)), &expect(op));
            assert!(err < 1e-4, "W = {pattern:?}: relative error {err}");
        }
    }

    #[test]
    fn two_layers_square_an_input() {
        // |W| < 1, so one layer cannot raise to the power 2: the first layer copies x0 twice
        // (open gate), the second multiplies the copies (closed gate).
        let device = Device::default();
        let copy = nalu_with([[1.0, 1.0], [0.0, 0.0]], OPEN, &device);
        let product = nalu_with([[1.0], [1.0]], CLOSED, &device);
        let y = product.forward(copy.forward(inputs(&device)));
        let err = max_rel_err(y, &expect(|r| r[0] * r[0]));
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    fn open_gate_adds_and_subtracts() {
        let device = Device::default();
        let nalu = nalu_with([[1.0, 1.0], [1.0, -1.0]], OPEN, &device);
        let got = nalu
            .forward(inputs(&device))
            .into_data()
            .try_to_vec::<f32>();
        let expected: Vec<f32> = ROWS
            .iter()
            .flat_map(|r| [r[0] + r[1], r[0] - r[1]])
            .collect();
        assert_eq!(got.unwrap(), expected);
    }

    /// A NALU a few ε from `x0 + x1`: weights tanh(3.8) ≈ 0.999 and gate logits
    /// `x·G = 0.5·(x0 + x1)`, 3.5 to 125 on these rows, so `g` ≥ 0.97 and the output errs by
    /// the leak `(1 − g)·x0·x1` and by `0.001·(x0 + x1)`. Snapped, its weights are 1 and its gate
    /// exactly 1: `x0 + x1` to the bit. Logits of the other sign close the gate: the product
    /// (within the 1e-4 of [`max_rel_err`]).
    #[test]
    fn snap_decides_the_gate() {
        let device = Device::default();
        let near = |g: f32| {
            let mut nalu = nalu_with([[1.0], [1.0]], Some(g), &device);
            nalu.nac.w_hat = Param::from_data([[3.8f32], [3.8]], &device);
            nalu
        };
        let sum = expect(|r| r[0] + r[1]);
        let plain = near(0.5).forward(inputs(&device));
        assert!(
            max_rel_err(plain, &sum) > 1e-3,
            "the plain NALU is a near miss"
        );
        let snapped = near(0.5).snap().forward(inputs(&device));
        assert_eq!(snapped.into_data().try_to_vec::<f32>().unwrap(), sum);
        let product = near(-0.5).snap().forward(inputs(&device));
        let err = max_rel_err(product, &expect(|r| r[0] * r[1]));
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    fn ungated_outputs_sum_of_both_paths() {
        let device = Device::default();
        // W = [1, −1]: a = x0 − x1, m = x0 / x1.
        let nalu = nalu_with([[1.0], [-1.0]], None, &device);
        assert!(!nalu.use_gating());
        let err = max_rel_err(
            nalu.forward(inputs(&device)),
            &expect(|r| (r[0] - r[1]) + r[0] / r[1]),
        );
        assert!(err < 1e-4, "relative error {err}");
    }

    #[test]
    fn rank_3_matches_flattened_rank_2() {
        let device = Device::default();
        device.seed(11);
        let nalu = NaluConfig::new(4, 3).init(&device);
        let x = Tensor::<3>::random([2, 5, 4], Distribution::Uniform(-2.0, 2.0), &device);
        let y3 = nalu.forward(x.clone()).reshape([10, 3]);
        let y2 = nalu.forward(x.reshape([10, 4]));
        // The fused path flattens rank 3 to rank 2 and computes the same bits; the generic path
        // may reorder the 4-term sums of `x·W`, `x·G` and `log(|x| + ε)·W` for rank 3. With
        // |x| < 2 and |W| < 1, |a| < 8 and m < e^(4·ln 2) = 16, and some 8 roundings on each
        // path move y by at most 8·2⁻²⁴·24 ≈ 1.2e-5.
        y3.into_data()
            .assert_approx_eq::<f32>(&y2.into_data(), Tolerance::rel_abs(1e-5, 2e-5));
    }

    #[test]
    fn gate_present_exactly_when_gating() {
        let device = Device::default();
        let gated = NaluConfig::new(3, 2).init(&device);
        assert!(gated.use_gating());
        assert_eq!(gated.gate.as_ref().unwrap().dims(), [3, 2]);
        assert_eq!(gated.epsilon(), 1e-7);
        let ungated = NaluConfig::new(3, 2).with_use_gating(false).init(&device);
        assert!(ungated.gate.is_none());
    }

    #[test]
    fn invalid_configs_are_refused_with_field_and_value() {
        let msg = |c: NaluConfig| c.validate().unwrap_err().to_string();
        assert_eq!(
            msg(NaluConfig::new(0, 1)),
            "NaluConfig.d_input must be at least 1, got 0"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 0)),
            "NaluConfig.d_output must be at least 1, got 0"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 1).with_epsilon(-1e-3)),
            "NaluConfig.epsilon must be finite and greater than 0, got -0.001"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 1).with_epsilon(0.0)),
            "NaluConfig.epsilon must be finite and greater than 0, got 0"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 1).with_epsilon(f64::NAN)),
            "NaluConfig.epsilon must be finite and greater than 0, got NaN"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 1).with_base(1.0)),
            "NaluConfig.base must be finite and greater than 1, got 1"
        );
        assert_eq!(
            msg(NaluConfig::new(1, 1).with_base(0.5)),
            "NaluConfig.base must be finite and greater than 1, got 0.5"
        );
    }

    /// The G-NALU from its own definitions, in f64: `tanh_φ(z) = (φ^2z − 1)/(φ^2z + 1)`,
    /// `σ_φ(z) = 1/(1 + φ^−z)`, `m = φ^(log_φ(|x| + ε)·W)`. The layer computes in f32 some 15
    /// operations deep on values below 10: each rounds by 2⁻²⁴ ≈ 6e-8 relatively, so 1e-5
    /// relative is ample; the NALU's own functions (base e) miss by more than 50%.
    #[test]
    fn golden_ratio_base_computes_the_g_nalu() {
        let device = Device::default();
        let (w_hat, m_hat, g) = ([0.7, -1.3], [0.4, 1.1], [0.3, -0.2]);
        let mut gnalu = NaluConfig::new(2, 1).with_base(GOLDEN_RATIO).init(&device);
        let column = |v: [f64; 2]| Param::from_data([[v[0] as f32], [v[1] as f32]], &device);
        (gnalu.nac.w_hat, gnalu.nac.m_hat) = (column(w_hat), column(m_hat));
        gnalu.gate = Some(column(g));
        let phi = GOLDEN_RATIO;
        let tanh = |z: f64| (phi.powf(2.0 * z) - 1.0) / (phi.powf(2.0 * z) + 1.0);
        let sigmoid = |z: f64| 1.0 / (1.0 + phi.powf(-z));
        let w = [0, 1].map(|i| tanh(w_hat[i]) * sigmoid(m_hat[i]));
        let rows = [[1.5, 2.0], [0.5, 3.0], [4.0, 0.25]];
        let expected: Vec<f32> = (rows.iter())
            .map(|x| {
                let gate = sigmoid(x[0] * g[0] + x[1] * g[1]);
                let a = x[0] * w[0] + x[1] * w[1];
                let log_m = (0..2).map(|i| (x[i] + 1e-7).log(phi) * w[i]).sum::<f64>();
                (gate * a + (1.0 - gate) * phi.powf(log_m)) as f32
            })
            .collect();
        let x = Tensor::<2>::from_data(rows.map(|r| r.map(|v| v as f32)), &device);
        let err = max_rel_err(gnalu.forward(x), &expected);
        assert!(err < 1e-5, "relative error {err}");
        assert_eq!(gnalu.base(), GOLDEN_RATIO);
    }

    /// Snapped, a G-NALU near `x0 + x1` is `x0 + x1` to the bit: its snap saturates `tanh_φ`
    /// and `σ_φ` (arguments 20/ln φ ≈ 41.6), not only `tanh` and `σ`.
    #[test]
    fn a_snapped_g_nalu_adds_exactly() {
        let device = Device::default();
        let mut gnalu = NaluConfig::new(2, 1).with_base(GOLDEN_RATIO).init(&device);
        gnalu.nac.w_hat = Param::from_data([[4.0f32], [4.0]], &device);
        gnalu.nac.m_hat = Param::from_data([[4.0f32], [4.0]], &device);
        gnalu.gate = Some(Param::from_data([[0.5f32], [0.5]], &device));
        let sum = expect(|r| r[0] + r[1]);
        let plain = gnalu.clone().forward(inputs(&device));
        assert!(
            max_rel_err(plain, &sum) > 1e-3,
            "a near miss before the snap"
        );
        let snapped = gnalu.snap().forward(inputs(&device));
        assert_eq!(snapped.into_data().try_to_vec::<f32>().unwrap(), sum);
    }

    #[test]
    #[should_panic(expected = "NaluConfig.epsilon must be finite and greater than 0, got -1")]
    fn init_panics_with_the_validation_message() {
        NaluConfig::new(2, 2)
            .with_epsilon(-1.0)
            .init(&Device::default());
    }

    #[test]
    #[should_panic(expected = "Nalu: input must have d_input = 100 features in its last \
                               dimension, got 99 (input shape [8, 99])")]
    fn wrong_input_size_names_layer_and_sizes() {
        let device = Device::default();
        let nalu = NaluConfig::new(100, 2).init(&device);
        nalu.forward(Tensor::<2>::zeros([8, 99], &device));
    }

    #[test]
    fn display() {
        let nalu = NaluConfig::new(3, 5).init(&Device::default());
        let shown = format!("{nalu}");
        assert!(
            shown.starts_with("Nalu {d_input: 3, d_output: 5, use_gating: true, epsilon: "),
            "{shown}"
        );
    }
}
