//! A population trains each of its seeds exactly as that seed trains alone.
//!
//! Seeds 0..5 of a task, trained for 200 steps as one population and as five runs, in f64:
//! every parameter of every kept checkpoint, and every reported number, agree to 1e-9
//! relative. The two ways differ only in how the matrix products of a population batch their
//! members (one batched product against five), which reorders f64 sums: each step moves a
//! parameter by some 1e-16 relative, far below what 200 steps of a stable descent can grow to
//! 1e-9.

#[path = "../../tests/common/mod.rs"]
mod common;

use burn_nalu::{L1Schedule, RegularizerSchedule};
use burn_nalu_lab::{
    Budget, MadsenTask, ModelKind, Operation, ReferenceTask, Task, TrainConfig, TrainedRun,
    init_seed, train_population,
};
use common::{f64_device, parameters};

fn assert_close(a: f64, b: f64, what: &str) {
    let scale = a.abs().max(b.abs()).max(1e-300);
    assert!(
        (a - b).abs() <= 1e-9 * scale || a == b || (a.is_nan() && b.is_nan()),
        "{what}: {a} against {b}"
    );
}

fn both_ways(config: &TrainConfig, op: Operation) -> (Vec<TrainedRun>, Vec<TrainedRun>) {
    let device = f64_device();
    let task = ReferenceTask::default();
    let data = || (0..5).map(|seed| task.data(op, seed));
    let together: Vec<TrainedRun> =
        train_population(data().collect(), config, &device, &mut |_| {}).unwrap();
    let alone = data()
        .map(|d| {
            train_population(vec![d], config, &device, &mut |_| {})
                .unwrap()
                .remove(0)
        })
        .collect();
    (together, alone)
}

fn check(config: TrainConfig, op: Operation) {
    let (together, alone) = both_ways(&config, op);
    for (t, a) in together.iter().zip(&alone) {
        assert_eq!((t.result.population, a.result.population), (5, 1));
    }
    assert_same_runs(&together, &alone, &config.model.to_string());
}

/// Runs `a` and `b` (of the same seeds) trained to the same step, kept the same checkpoint,
/// and agree to 1e-9 in every parameter of it and every reported number.
fn assert_same_runs(a: &[TrainedRun], b: &[TrainedRun], what: &str) {
    assert_eq!(a.len(), b.len());
    for (t, a) in a.iter().zip(b) {
        let seed = a.result.seed;
        assert_eq!(t.result.steps, a.result.steps, "seed {seed}");
        assert_eq!(
            (t.result.best_step, t.result.seed),
            (a.result.best_step, seed)
        );
        let (pt, pa) = (parameters(&t.model), parameters(&a.model));
        assert_eq!(pt.len(), pa.len());
        for (i, (x, y)) in pt.iter().zip(&pa).enumerate() {
            assert_close(*x, *y, &format!("{what} seed {seed} parameter {i}"));
        }
        let numbers = |r: &TrainedRun| {
            [
                r.result.train_mse,
                r.result.valid_mse,
                r.result.extrapolation_mse,
                r.result.random_init_extrapolation_mse,
            ]
        };
        for (x, y) in numbers(t).into_iter().zip(numbers(a)) {
            assert_close(x, y, &format!("{what} seed {seed} metrics"));
        }
    }
}

/// NAU → NMU and iNALU on Madsen & Johansen's `×`, NAU → NPU, NAU → RealNPU, NAU → NMRU and NAU
/// → NRU on their `÷` (fresh batches, Adam, the regulariser ramped in within the 200 steps, 20
/// for the NRU), NAU → sNMU on `×` (each run's noise drawn from its own seed and the step both
/// ways), and NAC → NAC and NAC → NAC• on `×`, without gradient clipping, train on the
/// host step, member by member with the fused kernels; clipped at a norm no gradient reaches (a
/// scale of exactly 1), they take the generic step of Burn ops. The two sum the loss, the
/// regulariser and the NPU gate's gradient over the rows in other orders: some 1e-16 relative
/// per step, as between a population and its runs above. (The stacks without a regulariser take
/// the same bits both ways, here and in f32, `tests/host_step.rs`: NAC → NAC• on this task
/// turns a difference of rounding into one of 5% within 200 steps.)
#[test]
fn host_steps_equal_the_generic_step_in_f64() {
    let device = f64_device();
    let task = MadsenTask::default();
    let cases = [
        (ModelKind::NauNmu, Operation::Mul),
        (ModelKind::Npu, Operation::Div),
        (ModelKind::RealNpu, Operation::Div),
        (ModelKind::Nac, Operation::Mul),
        (ModelKind::NacMul, Operation::Mul),
        (ModelKind::NauNmru, Operation::Div),
        (ModelKind::Inalu, Operation::Mul),
        (ModelKind::NauSnmu, Operation::Mul),
    ];
    // The NRU's selector tanh(1000·W)² multiplies rounding by up to 1000 a step: 3e-16 after
    // 20 steps, 3e-11 after 50 (measured). Its case stops at 20 steps, the regulariser ramped
    // in from step 5 to 15.
    let cases = cases.map(|(model, op)| (model, op, 200)).into_iter();
    let cases = cases.chain([(ModelKind::NauNru, Operation::Div, 20)]);
    for (model, op, steps) in cases {
        let data = || (0..5).map(|seed| task.data(op, seed)).collect();
        let host = TrainConfig {
            budget: Budget::Steps(steps),
            eval_every: Some(steps / 4),
            regularizer: model.has_regularizer().then_some(RegularizerSchedule {
                lambda: 0.1,
                start: steps / 4,
                end: 3 * steps / 4,
            }),
            ..TrainConfig::madsen(model)
        };
        let generic = TrainConfig {
            clip_norm: Some(1e30),
            ..host.clone()
        };
        let train = |config: &TrainConfig| -> Vec<TrainedRun> {
            train_population(data(), config, &device, &mut |_| {}).unwrap()
        };
        let (host_runs, generic_runs) = (train(&host), train(&generic));
        assert_same_runs(&host_runs, &generic_runs, &format!("{model} host step"));
        // The runs moved: a step that left the weights alone would pass the comparison above.
        let start = TrainConfig {
            budget: Budget::Steps(1),
            ..host.clone()
        };
        let first = train(&start);
        let moved = parameters(&first[0].model) != parameters(&host_runs[0].model);
        assert!(moved, "{model}: {steps} steps changed nothing");
    }
}

/// The host step of a population (NAU → NAU on the reference task: epochs over fixed rows)
/// trains each member as that seed trains alone.
#[test]
fn nau_population_on_the_host_step_equals_five_runs() {
    let config = TrainConfig {
        budget: Budget::Steps(200),
        ..TrainConfig::recipe(ModelKind::Nau, Operation::Add)
    };
    check(config, Operation::Add);
}

/// NAU → NMU with Adam, a regulariser ramped in within the 200 steps, scaled per seed by its
/// own target variance, and per-seed gradient clipping.
#[test]
fn nau_nmu_population_equals_five_runs() {
    let config = TrainConfig {
        budget: Budget::Steps(200),
        regularizer: Some(RegularizerSchedule {
            lambda: 0.1,
            start: 50,
            end: 150,
        }),
        clip_norm: Some(5.0),
        ..TrainConfig::recipe(ModelKind::NauNmu, Operation::Mul)
    };
    check(config, Operation::Mul);
}

/// NAU → sNMU: each run's noise in a step is drawn from its own seed and the step, so a
/// population's runs see the noise they see alone.
#[test]
fn nau_snmu_population_equals_five_runs() {
    let config = TrainConfig {
        budget: Budget::Steps(200),
        ..TrainConfig::recipe(ModelKind::NauSnmu, Operation::Mul)
    };
    check(config, Operation::Mul);
}

/// Mistry et al.'s modified RealNPU alone, with its regulariser ramped in and the L1 penalty
/// growing within the 200 steps: each member's own `Σ|p|`.
#[test]
fn modified_realnpu_population_with_an_l1_penalty_equals_five_runs() {
    let config = TrainConfig {
        budget: Budget::Steps(200),
        regularizer: Some(RegularizerSchedule {
            lambda: 1.0,
            start: 50,
            end: 150,
        }),
        l1: Some(L1Schedule {
            start: 1e-4,
            end: 1e-2,
            every: 50,
            growth: 10.0,
        }),
        ..TrainConfig::mistry(ModelKind::RealNpuMistry, Operation::Div, 10)
    };
    check(config, Operation::Div);
}

/// NALU → NALU with RMSProp, through the fused kernels on flex.
#[test]
fn nalu_population_equals_five_runs() {
    let config = TrainConfig {
        budget: Budget::Steps(200),
        lr: 0.01,
        ..TrainConfig::reference(Operation::Add)
    };
    check(config, Operation::Add);
}

/// With three initialisations per seed, each seed keeps the initialisation with the lowest
/// validation MSE, and that run is the one its initialisation seed trains alone.
#[test]
fn each_seed_keeps_its_initialisation_with_the_lowest_validation_mse() {
    let device = f64_device();
    let task = ReferenceTask::default();
    let config = TrainConfig {
        budget: Budget::Steps(200),
        inits_per_seed: 3,
        ..TrainConfig::recipe(ModelKind::RealNpu, Operation::Div)
    };
    let data = || (0..2).map(|seed| task.data(Operation::Div, seed));
    let chosen: Vec<TrainedRun> =
        train_population(data().collect(), &config, &device, &mut |_| {}).unwrap();
    let single = TrainConfig {
        inits_per_seed: 1,
        ..config.clone()
    };
    for (run, d) in chosen.iter().zip(data()) {
        let seed = d.seed;
        let alone: Vec<TrainedRun> = (0..3)
            .map(|k| {
                let mut d = task.data(Operation::Div, seed);
                d.seed = init_seed(seed, k);
                train_population(vec![d], &single, &device, &mut |_| {})
                    .unwrap()
                    .remove(0)
            })
            .collect();
        let best = alone
            .iter()
            .min_by(|a, b| a.result.valid_mse.total_cmp(&b.result.valid_mse))
            .unwrap();
        let distinct = alone[0].result.valid_mse != alone[1].result.valid_mse;
        assert!(distinct, "initialisations must differ");
        assert_eq!((run.result.seed, run.result.inits), (seed, 3));
        assert_eq!(run.result.init_seed, best.result.init_seed);
        assert_close(
            run.result.valid_mse,
            best.result.valid_mse,
            "chosen valid MSE",
        );
        assert_close(
            run.result.extrapolation_mse,
            best.result.extrapolation_mse,
            "chosen extrapolation MSE",
        );
    }
}
