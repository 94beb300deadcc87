//! A recurrent cell read back as the running sum it keeps.

use burn::tensor::{Tensor, TensorData};

use super::{
    Discretize, Expr, Formula, FormulaError, FormulaLayer, LayerSnap, Levels, NotDiscrete,
    SnapOptions, SnappedWeights, composed_map, extract, severity,
};
use crate::RecurrentCell;

/// The formula of a recurrent `cell` read by `layers` on its last state, over sequences `x`
/// (`[rows, time, d_input]`).
///
/// A cell whose unit is linear on the data (NAC, NAU; a NALU whose gates are shut to its additive
/// path at every step) computes `h_t = x_t·A + h_{t−1}·R` (`A` the unit's first `d_input` rows, `R`
/// the rest). Let `v` be what the layers read of the state: their composed map when all are linear
/// on the data, otherwise the states the first one reads (the identity's columns of the states its
/// snapped weights take in). The layers see `h_T·v = Σ_t x_t·A·R^(T−t)·v + h_0·R^T·v`; where every
/// input counts alike at every step (`A·R^k·v = A·v`) and the initial state not at all
/// (`h_0·R^k·v = 0`), that is `(Σ_t x_t)·A·v`: the model is the static stack `[A, layers…]` on the
/// sums `Σ_t x_t`, which [`extract`] reads (`layer 0` is `A`). Both conditions hold for every
/// `k ≥ 1` once they hold for `1 ≤ k ≤ d_hidden` (Cayley–Hamilton), which is what is checked (`h_0`
/// itself, `k = 0`, is never read). Input `i` of the formula is therefore feature `i` summed over
/// every step: a cell that keeps `a + b` reads back as `a + b`, with `a` and `b` named on one
/// step's features, and a product unit on top as `a·b`. States that mix (`R` not the identity)
/// while carrying what is read, and states nothing reaches or reads, do not stand in the way.
///
/// ```
/// use burn::module::Param;
/// use burn::tensor::{Device, Tensor};
/// use burn_nalu::formula::{Naming, SnapOptions, extract_recurrent};
/// use burn_nalu::{NauConfig, NmuConfig, RecurrentCellConfig};
///
/// let device = Device::default();
/// // Two states keeping x0 + x1 and x2 (R = I, h_0 = 0), an NMU multiplying them.
/// let nau = |i, o| NauConfig::new(i, o).init(&device);
/// let mut cell = RecurrentCellConfig::new(3, 2).init(&device, nau);
/// let w = [[1.0f32, 0.0], [0.99, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]];
/// cell.unit.weight = Param::from_data(w, &device);
/// let mut nmu = NmuConfig::new(2, 1).init(&device);
/// nmu.weight = Param::from_data([[1.0f32], [1.0]], &device);
///
/// let x = Tensor::<3>::ones([4, 5, 3], &device); // 4 sequences of 5 steps
/// let formula = extract_recurrent(&cell, &[&nmu], x, &SnapOptions::default()).unwrap();
/// let names = Naming::new().with_group("a", &[0, 1]).with_group("b", &[2]);
/// assert_eq!(formula.render(&names), "a·b"); // a and b summed over every step
/// ```
///
/// # Errors
///
/// [`FormulaError::Unsupported`] when the cell's unit is not linear on the data (an NMU, iNALU
/// cell, a NALU whose gates let its multiplicative path in: no running sum to read);
/// [`FormulaError::NotDiscrete`] when a coefficient `A·R^k·v` is farther than
/// `options.max_distance` from `A·v`, one of `h_0·R^k·v` from 0, or the stack on the sums has
/// obstacles (all listed, farthest first; the sparsity error includes those distances).
pub fn extract_recurrent<U: Discretize>(
    cell: &RecurrentCell<U>,
    layers: &[&dyn FormulaLayer],
    x: Tensor<3>,
    options: &SnapOptions,
) -> Result<Formula, FormulaError> {
    let [rows, time, d] = x.dims();
    let states = cell.forward(x.clone());
    let Some(w) = cell
        .unit
        .linear_map_on(&step_inputs(cell, &x, &states), options)
    else {
        return Err(FormulaError::Unsupported("non-linear RecurrentCell"));
    };
    let [_, d_hidden] = w.dims();
    let last = states.narrow(1, time - 1, 1).reshape([rows, d_hidden]);
    let (v, selection) = read_map(layers, last.clone(), options)?;
    let h0 = cell.initial.val().unsqueeze::<2>();
    let mut obstacles = recurrence_obstacles(w.clone(), h0, v);
    let offset = selection.then(|| steady_offset(&obstacles, d_hidden, time, options));
    let shifted = (offset.flatten())
        .filter(|e| positive_without(&last, e))
        .and_then(|offset| Shifted::new(layers[0], &last, offset, options));
    if shifted.is_some() {
        obstacles.retain(|o| !matches!(o, NotDiscrete::InitialState { .. }));
    }
    let recurrence_error = obstacles.iter().map(severity).fold(0.0, f64::max);
    obstacles.retain(|o| severity(o) > options.max_distance);
    let block = InputBlock(w.narrow(0, 0, d));
    let mut stack: Vec<&dyn FormulaLayer> = vec![&block];
    match &shifted {
        Some(first) => {
            stack.push(first);
            stack.extend_from_slice(&layers[1..]);
        }
        None => stack.extend_from_slice(layers),
    }
    let sums = x.sum_dim(1).reshape([rows, d]);
    match extract(&stack, sums, options) {
        Ok(f) if obstacles.is_empty() => Ok(Formula {
            sparsity_error: f.sparsity_error.max(recurrence_error),
            ..f
        }),
        Ok(f) => Err(not_discrete(f.sparsity_error, recurrence_error, obstacles)),
        Err(FormulaError::NotDiscrete {
            sparsity_error,
            obstacles: more,
        }) => {
            obstacles.extend(more);
            Err(not_discrete(sparsity_error, recurrence_error, obstacles))
        }
        Err(err) => Err(err),
    }
}

/// What the cell's unit reads at every step of `x` (`[rows, time, d_input]`, the cell's states
/// over it `states`): `[x_t, h_{t−1}]`, `[rows·time, d_input + d_hidden]`.
fn step_inputs<U: Discretize>(
    cell: &RecurrentCell<U>,
    x: &Tensor<3>,
    states: &Tensor<3>,
) -> Tensor<2> {
    let [rows, time, d] = x.dims();
    let d_hidden = states.dims()[2];
    let h0 = cell
        .initial_state(rows)
        .cast(x.dtype())
        .unsqueeze_dim::<3>(1);
    let previous = match time {
        1 => h0,
        _ => Tensor::cat(vec![h0, states.clone().narrow(1, 0, time - 1)], 1),
    };
    Tensor::cat(vec![x.clone(), previous], 2).reshape([rows * time, d + d_hidden])
}

/// `v`, `[d_hidden, k]`: what `layers` read of the last states `h` (`[rows, d_hidden]`), and
/// whether it is the states the first layer takes in (a diagonal of 0 and 1).
fn read_map(
    layers: &[&dyn FormulaLayer],
    h: Tensor<2>,
    options: &SnapOptions,
) -> Result<(Tensor<2>, bool), FormulaError> {
    let [_, d_hidden] = h.dims();
    let Some((first, _)) = layers.split_first() else {
        return Ok((Tensor::eye(d_hidden, &h.device()), false));
    };
    let mut inputs = vec![h.clone()];
    for layer in &layers[..layers.len() - 1] {
        let next = layer.forward_rows(inputs.last().expect("one").clone());
        inputs.push(next);
    }
    if let Some(map) = composed_map(layers, &inputs, options) {
        return Ok((map, false));
    }
    let states: Vec<Expr> = (0..d_hidden).map(Expr::input).collect();
    let snap = first.snap_layer(&states, &h, options)?;
    let mut read = vec![0.0f32; d_hidden * d_hidden];
    for &i in snap.support.iter().flatten() {
        read[i * d_hidden + i] = 1.0;
    }
    let read = TensorData::new(read, [d_hidden, d_hidden]);
    Ok((Tensor::from_data(read, &h.device()), true))
}

/// Every coefficient `A·R^k·v` against `A·v`, for `k` in `1..=d_hidden`, and every `h_0·R^k·v`
/// (the initial state as the layers see it after `k` steps) against 0, for `k` in
/// `1..=d_hidden + 1` (one more, to see whether it stays), as obstacles at their distances;
/// `w` is `[A; R]`.
fn recurrence_obstacles(w: Tensor<2>, h0: Tensor<2>, v: Tensor<2>) -> Vec<NotDiscrete> {
    let [d_hidden, reads] = v.dims();
    let d = w.dims()[0] - d_hidden;
    let (a, r) = (w.clone().narrow(0, 0, d), w.narrow(0, d, d_hidden));
    let values = |t: Tensor<2>| {
        t.into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .expect("f64")
    };
    let want = values(a.clone().matmul(v.clone()));
    let (mut a_r, mut h0_r) = (a, h0);
    let mut obstacles = Vec::new();
    for steps in 1..=d_hidden + 1 {
        a_r = a_r.matmul(r.clone());
        h0_r = h0_r.matmul(r.clone());
        let got = values(a_r.clone().matmul(v.clone()));
        let pairs = got.into_iter().zip(&want).enumerate();
        obstacles.extend(
            pairs
                .filter(|_| steps <= d_hidden)
                .map(|(n, (value, &want))| NotDiscrete::Recurrence {
                    steps,
                    at: (n / reads, n % reads),
                    value,
                    want,
                }),
        );
        let shown = values(h0_r.clone().matmul(v.clone()))
            .into_iter()
            .enumerate();
        obstacles.extend(shown.map(|(at, value)| NotDiscrete::InitialState { steps, at, value }));
    }
    obstacles
}

/// The initial state's share of each state the layers read, where it is the same after every
/// step (`h_0·R^k·v` for `k` = 1 to `d_hidden + 1`, drifting less than `max_distance` over
/// `time` steps) and is the only obstacle of the recurrence; `None` otherwise or where it is 0.
fn steady_offset(
    obstacles: &[NotDiscrete],
    d_hidden: usize,
    time: usize,
    options: &SnapOptions,
) -> Option<Vec<f64>> {
    let far = |o: &&NotDiscrete| severity(o) > options.max_distance;
    if obstacles
        .iter()
        .filter(far)
        .any(|o| !matches!(o, NotDiscrete::InitialState { .. }))
    {
        return None;
    }
    let mut shares = vec![Vec::new(); d_hidden];
    for o in obstacles {
        if let NotDiscrete::InitialState { at, value, .. } = o {
            shares[*at].push(*value);
        }
    }
    let offset: Vec<f64> = shares
        .iter()
        .map(|s| s.first().copied().unwrap_or(0.0))
        .collect();
    let steady = shares.iter().all(|s| {
        let (lo, hi) = s
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        s.is_empty() || (hi - lo) * time as f64 <= options.max_distance
    });
    (steady && offset.iter().any(|&e| e.abs() > options.max_distance)).then_some(offset)
}

/// Whether every state that carries an offset is positive on the data with it and without it
/// (`h` the last states, `[rows, d_hidden]`): a power unit then reads it as it is.
fn positive_without(h: &Tensor<2>, offset: &[f64]) -> bool {
    let [_, d_hidden] = h.dims();
    let values = h.clone().into_data().convert::<f64>();
    let values = values.try_to_vec::<f64>().expect("f64 after convert");
    values
        .chunks(d_hidden)
        .all(|row| (row.iter().zip(offset)).all(|(&s, &e)| e == 0.0 || (s > 0.0 && s - e > 0.0)))
}

/// The first layer on the states, read as it reads them without the initial state's steady
/// share (`offset`), where its arithmetic cancels that share ([`Discretize::absorb_offset`]).
struct Shifted<'a> {
    layer: &'a dyn FormulaLayer,
    offset: Vec<f64>,
}

impl<'a> Shifted<'a> {
    /// `None` where `layer` cannot cancel `offset` on the states `h`.
    fn new(
        layer: &'a dyn FormulaLayer,
        h: &Tensor<2>,
        offset: Vec<f64>,
        options: &SnapOptions,
    ) -> Option<Self> {
        let states: Vec<Expr> = (0..offset.len()).map(Expr::input).collect();
        layer
            .snap_layer_shifted(&states, h, &offset, options)?
            .ok()?;
        Some(Self { layer, offset })
    }
}

impl FormulaLayer for Shifted<'_> {
    fn snap_layer(
        &self,
        inputs: &[Expr],
        x: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let snap = self
            .layer
            .snap_layer_shifted(inputs, x, &self.offset, options);
        snap.expect("checked in Shifted::new")
    }

    /// The network's own values: the states with their offset.
    fn forward_rows(&self, x: Tensor<2>) -> Tensor<2> {
        let offset: Vec<f32> = self.offset.iter().map(|&e| e as f32).collect();
        let offset = Tensor::<1>::from_floats(offset.as_slice(), &x.device()).cast(x.dtype());
        self.layer.forward_rows(x.add(offset.unsqueeze()))
    }

    fn linear_map(&self) -> Option<Tensor<2>> {
        None
    }

    fn scale_free(&self) -> bool {
        self.layer.scale_free()
    }
}

/// The cell's input block `A` as a layer of its own: `x·A`, its weights read as a NAC's or a
/// NAU's are (−1, 0 or 1, or composed with the layers above).
struct InputBlock(Tensor<2>);

impl FormulaLayer for InputBlock {
    fn snap_layer(
        &self,
        inputs: &[Expr],
        _: &Tensor<2>,
        options: &SnapOptions,
    ) -> Result<LayerSnap, FormulaError> {
        let w = SnappedWeights::new(self.0.clone(), Levels::SignedUnit, options);
        let outputs = w.sums(inputs);
        Ok(w.into_layer(outputs))
    }

    fn forward_rows(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.0.clone())
    }

    fn linear_map(&self) -> Option<Tensor<2>> {
        Some(self.0.clone())
    }

    fn scale_free(&self) -> bool {
        false
    }
}

fn not_discrete(
    stack_error: f64,
    recurrence_error: f64,
    mut obstacles: Vec<NotDiscrete>,
) -> FormulaError {
    obstacles.sort_by(|a, b| severity(b).total_cmp(&severity(a)));
    FormulaError::NotDiscrete {
        sparsity_error: stack_error.max(recurrence_error),
        obstacles,
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use burn::module::Param;

    use super::*;
    use crate::formula::Naming;
    use crate::{NaluConfig, Nau, NmuConfig, RecurrentCellConfig};

    /// A NAU cell of two states keeping `x0 + x1` and `x2` (`A`), with recurrence `r` and
    /// `h_0 = h0`, under an NMU multiplying both states.
    fn running_product(
        r: [[f32; 2]; 2],
        h0: [f32; 2],
        device: &Device,
    ) -> (RecurrentCell<Nau>, crate::Nmu) {
        let cell = nau_cell(
            [[1.0, 0.0], [0.98, 0.0], [0.0, 1.0], r[0], r[1]],
            h0,
            device,
        );
        let mut nmu = NmuConfig::new(2, 1).init(device);
        nmu.weight = Param::from_data([[1.0f32], [0.97]], device);
        (cell, nmu)
    }

    /// A NAU cell of two states over three inputs, `W = [A; R]` = `w`, `h_0` = `h0`.
    fn nau_cell(w: [[f32; 2]; 5], h0: [f32; 2], device: &Device) -> RecurrentCell<Nau> {
        let mut cell = RecurrentCellConfig::new(3, 2)
            .init(device, |i, o| crate::NauConfig::new(i, o).init(device));
        cell.unit.weight = Param::from_data(w, device);
        cell.initial = Param::from_data(h0, device);
        cell
    }

    /// Each sequence's inputs summed over its steps, row-major.
    fn step_sums(x: &Tensor<3>) -> Vec<f32> {
        let [rows, _, d] = x.dims();
        let sums = x.clone().sum_dim(1).reshape([rows, d]);
        sums.into_data().try_to_vec().unwrap()
    }

    fn sequences(device: &Device) -> Tensor<3> {
        let x: Vec<f32> = (0..4 * 5 * 3).map(|k| 0.1 + (k % 7) as f32 * 0.3).collect();
        Tensor::<1>::from_floats(x.as_slice(), device).reshape([4, 5, 3])
    }

    /// Near the identity and 0, the cell reads back as the sums it keeps, the NMU as their
    /// product; the formula on the summed rows is the network on the sequences up to the
    /// weights' snapping (0.98, 0.97 and 0.02 off: a few percent).
    #[test]
    fn a_running_sum_reads_back_as_the_sum_over_time() {
        let device = Device::default();
        let (cell, nmu) = running_product([[0.99, 0.0], [0.01, 1.0]], [0.02, 0.0], &device);
        let x = sequences(&device);
        let f = extract_recurrent(&cell, &[&nmu], x.clone(), &SnapOptions::default()).unwrap();
        assert_eq!(f.render(&Naming::new()), "(x0 + x1)·x2");
        let names = Naming::new().with_group("a", &[0, 1]).with_group("b", &[2]);
        assert_eq!(f.render(&names), "a·b");
        // The largest distance: the NMU's 0.97.
        assert!(
            (f.sparsity_error - 0.03).abs() < 1e-6,
            "{}",
            f.sparsity_error
        );
        let sums = step_sums(&x);
        let net = nmu.forward(cell.forward(x).narrow(1, 4, 1).reshape([4, 2]));
        let net: Vec<f32> = net.into_data().try_to_vec().unwrap();
        for (row, y) in f.eval_rows(&sums, 3).iter().zip(net) {
            assert!((row[0] / y as f64 - 1.0).abs() < 0.1, "{row:?} vs {y}");
        }
    }

    /// A recurrence that forgets (state 0 keeps 0.7 of itself a step) or an initial state
    /// that shows is named as the obstacle, the farthest first.
    #[test]
    fn a_recurrence_that_forgets_has_no_formula() {
        let device = Device::default();
        let (cell, nmu) = running_product([[0.7, 0.0], [0.0, 1.0]], [0.0, 0.5], &device);
        let err = extract_recurrent(&cell, &[&nmu], sequences(&device), &SnapOptions::default())
            .unwrap_err();
        let FormulaError::NotDiscrete {
            sparsity_error,
            obstacles,
        } = &err
        else {
            panic!("{err}");
        };
        // x0 counts 1 at the last step, 0.7 one step back, 0.49 two back.
        let NotDiscrete::Recurrence {
            steps: 2,
            at: (0, 0),
            value,
            want: 1.0,
        } = obstacles[0]
        else {
            panic!("{err}");
        };
        assert!((value - 0.49).abs() < 1e-6, "{err}");
        assert!((sparsity_error - 0.51).abs() < 1e-6, "{err}");
        let shows = NotDiscrete::InitialState {
            steps: 1,
            at: 1,
            value: 0.5,
        };
        assert!(obstacles.contains(&shows), "{err}");
        assert!(
            err.to_string()
                .contains("input 0 counts 0.4900 in read 0 2 step(s) back, not 1.0000"),
            "{err}"
        );
    }

    /// Two states that trade their contents every step (`R` far from the identity) while
    /// their sum, which a NAU reads, is carried whole (`R·v = v` for `v = (1, 1)`): a running
    /// sum of `x0 + x1`, read back as such and equal to the network to f32 rounding.
    #[test]
    fn states_that_mix_but_carry_what_is_read_are_a_running_sum() {
        let device = Device::default();
        let w = [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.3, 0.7], [0.6, 0.4]];
        let cell = nau_cell(w, [0.0; 2], &device);
        let mut nau = crate::NauConfig::new(2, 1).init(&device);
        nau.weight = Param::from_data([[1.0f32], [1.0]], &device);
        let x = sequences(&device);
        let f = extract_recurrent(&cell, &[&nau], x.clone(), &SnapOptions::default()).unwrap();
        assert_eq!(f.render(&Naming::new()), "x0 + x1");
        let sums = step_sums(&x);
        let net = nau.forward(cell.forward(x).narrow(1, 4, 1).reshape([4, 2]));
        for (row, y) in f
            .eval_rows(&sums, 3)
            .iter()
            .zip(net.into_data().try_to_vec::<f32>().unwrap())
        {
            // Five steps of values under 2 (sums under 20), a few roundings a step: a few f32
            // ulps (1.9e-6) of 20.
            assert!((row[0] - y as f64).abs() < 1e-5, "{row:?} vs {y}");
        }
    }

    /// A state no input reaches (state 1: no weight from `x`, `h_0 = 0`) may feed the state
    /// that is read with any weight (`R[1, 0] = −1`): it is 0 at every step.
    #[test]
    fn a_state_nothing_reaches_does_not_stand_in_the_way() {
        let device = Device::default();
        let w = [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 0.6]];
        let cell = nau_cell(w, [0.0; 2], &device);
        let mut nau = crate::NauConfig::new(2, 1).init(&device);
        nau.weight = Param::from_data([[1.0f32], [0.0]], &device);
        let f = extract_recurrent(&cell, &[&nau], sequences(&device), &SnapOptions::default());
        assert_eq!(f.unwrap().render(&Naming::new()), "x0 + x1");
    }

    /// A NALU cell whose gates are shut to its additive path on every step (`G` = 50 on
    /// positive inputs and states: `σ` rounds to 1) is a NAC cell, and reads back as one.
    #[test]
    fn a_nalu_cell_on_its_additive_path_is_a_running_sum() {
        let device = Device::default();
        let mut cell = RecurrentCellConfig::new(3, 2)
            .init(&device, |i, o| NaluConfig::new(i, o).init(&device));
        // W = tanh(Ŵ)·σ(M̂) = ±1 or 0 exactly in f32 at ±40.
        let pattern = [
            [1.0f32, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [0.0, 1.0],
        ];
        let logit = |w: f32| if w == 0.0 { -40.0 } else { 40.0 };
        cell.unit.nac.w_hat = Param::from_data(pattern.map(|r| r.map(|w| 40.0 * w)), &device);
        cell.unit.nac.m_hat = Param::from_data(pattern.map(|r| r.map(logit)), &device);
        cell.unit.gate = Some(Param::from_data([[50.0f32; 2]; 5], &device));
        let mut nmu = NmuConfig::new(2, 1).init(&device);
        nmu.weight = Param::from_data([[1.0f32], [1.0]], &device);
        let x = sequences(&device);
        let f = extract_recurrent(&cell, &[&nmu], x, &SnapOptions::default()).unwrap();
        assert_eq!(f.render(&Naming::new()), "(x0 + x1)·x2");
    }

    /// A cell `0.6·Σx0`, `0.75·Σx1` from `h_0` = (−1, −1.5) under a RealNPU `r0 / r1` whose
    /// relevance gates 0.5 and 0.4 cancel the initial state (`ĝ·h_0 + 1 − ĝ = 0`: `r = ĝ·s`,
    /// 0.3 times each sum) computes `Σx0 / Σx1` exactly, and reads back as it; with `h_0[0]`
    /// at −0.5 the gate leaves 0.25 beside `ĝ·s`, and the initial state is the obstacle.
    #[test]
    fn an_initial_state_that_the_gates_cancel_reads_back() {
        let device = Device::default();
        let build = |h0: [f32; 2]| {
            let mut cell = RecurrentCellConfig::new(2, 2)
                .init(&device, |i, o| crate::NauConfig::new(i, o).init(&device));
            let w = [[0.6f32, 0.0], [0.0, 0.75], [1.0, 0.0], [0.0, 1.0]];
            cell.unit.weight = Param::from_data(w, &device);
            cell.initial = Param::from_data(h0, &device);
            let mut npu = crate::RealNpuConfig::new(2, 1).init(&device);
            npu.w_re = Param::from_data([[1.0f32], [-1.0]], &device);
            npu.gate = Param::from_data([0.5f32, 0.4], &device);
            (cell, npu)
        };
        // Five steps of inputs in [1, 2.8]: every sum at least 3 with and without h_0.
        let x: Vec<f32> = (0..4 * 5 * 2).map(|k| 1.0 + (k % 7) as f32 * 0.3).collect();
        let x = Tensor::<1>::from_floats(x.as_slice(), &device).reshape([4, 5, 2]);
        let (cell, npu) = build([-1.0, -1.5]);
        let f = extract_recurrent(&cell, &[&npu], x.clone(), &SnapOptions::default()).unwrap();
        assert_eq!(f.render(&Naming::new()), "x0 / x1");
        let sums = step_sums(&x);
        let net = npu.forward(cell.forward(x.clone()).narrow(1, 4, 1).reshape([4, 2]));
        let net = net.into_data().try_to_vec::<f32>().unwrap();
        for (row, y) in f.eval_rows(&sums, 2).iter().zip(net) {
            // exp of two logs of values near 3 to 4, and ε = 1e-7 beside them: 1e-6 relative.
            assert!((row[0] / y as f64 - 1.0).abs() < 1e-5, "{row:?} vs {y}");
        }
        let (cell, npu) = build([-0.5, -1.5]);
        let err = extract_recurrent(&cell, &[&npu], x, &SnapOptions::default()).unwrap_err();
        let FormulaError::NotDiscrete { obstacles, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            matches!(obstacles[0], NotDiscrete::InitialState { at: 1, .. }),
            "{err}"
        );
    }

    /// A NALU cell with its gates as initialised, open to the multiplicative path, is not a
    /// running sum: no formula, and the error says why.
    #[test]
    fn a_non_linear_cell_is_unsupported() {
        let device = Device::default();
        let cell = RecurrentCellConfig::new(3, 2)
            .init(&device, |i, o| NaluConfig::new(i, o).init(&device));
        let nmu = NmuConfig::new(2, 1).init(&device);
        let err = extract_recurrent(&cell, &[&nmu], sequences(&device), &SnapOptions::default());
        assert!(matches!(err, Err(FormulaError::Unsupported(_))), "{err:?}");
    }
}
