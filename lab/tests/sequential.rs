//! Madsen & Johansen's sequential arithmetic through the experiments' loop: the NAU cell learns
//! the running sum and the NMU cell the running product, each read at every step and
//! extrapolated to longer sequences; sequences whose targets outgrow f32 are refused, and a run
//! whose outputs do is reported as such.

use burn::tensor::Device;
use burn_nalu_lab::{
    Budget, ModelKind, Operation, SequentialSpec, SequentialTask, Task, TrainConfig, TrainedRun,
    train_population,
};

fn runs(model: ModelKind, op: Operation, spec: SequentialSpec, steps: usize) -> Vec<TrainedRun> {
    let task = SequentialTask::new(spec).unwrap();
    let data = (0..2).map(|seed| task.data(op, seed)).collect();
    let config = TrainConfig {
        budget: Budget::Steps(steps),
        ..TrainConfig::sequential(model)
    };
    train_population(data, &config, &Device::default(), &mut |_| {}).unwrap()
}

/// With the digits given as numbers only the cell's two weights are learned: both seeds
/// reach the ε-threshold (true weights moved by 1e-5) on 1,000-step sums and 20-step products,
/// having trained on 10 and 2 steps.
#[test]
fn cells_learn_running_sums_and_products_and_extrapolate() {
    let spec = SequentialSpec {
        eval_rows: 200,
        ..SequentialSpec::default()
    };
    for (model, op) in [
        (ModelKind::NauCell, Operation::Add),
        (ModelKind::NmuCell, Operation::Mul),
    ] {
        for run in runs(model, op, spec, 4000) {
            let r = &run.result;
            assert!(
                r.success,
                "{model} {op} seed {}: extrapolation MSE {} ≥ threshold {}",
                r.seed, r.extrapolation_mse, r.success_threshold
            );
        }
    }
}

/// A product over 1,000 steps of digits 1 to 9 leaves f32 (9^41 > 3.4e38): the task's data is
/// refused before training, naming the split and the first step past f32.
#[test]
fn products_beyond_f32_are_refused_with_the_step() {
    let task = SequentialTask::new(SequentialSpec {
        extrapolation_time: Some(1000),
        eval_rows: 100,
        ..SequentialSpec::default()
    })
    .unwrap();
    let data = task.data(Operation::Mul, 0);
    let err = TrainConfig::sequential(ModelKind::NmuCell)
        .validate_for(&data)
        .unwrap_err()
        .to_string();
    let prefix = "TaskData.extrapolation has targets beyond f32 (±3.4e38) from output ";
    assert!(err.starts_with(prefix), "{err}");
    let step: usize = err[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // At most 9 a step, so not before step 41; a sequence of 1,000 digits gets there long
    // before its end.
    assert!((41..1000).contains(&step), "{err}");
    // Sums of the same length stay finite, and a model that cannot read the rows is refused.
    let sums = task.data(Operation::Add, 0);
    assert!(
        TrainConfig::sequential(ModelKind::NauCell)
            .validate_for(&sums)
            .is_ok()
    );
    let err = TrainConfig::sequential(ModelKind::Nau)
        .validate_for(&sums)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "TrainConfig.model nau reads whole rows, but the sequential task's rows are sequences \
         with a target after every step"
    );
}

/// An NMU cell trained on sums multiplies its state by about (x + 1)/2 a step: over 1,000
/// steps its outputs leave f32, and the run says so instead of reporting a bare inf.
#[test]
fn a_run_whose_outputs_leave_f32_says_so() {
    let spec = SequentialSpec {
        eval_rows: 50,
        ..SequentialSpec::default()
    };
    for run in runs(ModelKind::NmuCell, Operation::Add, spec, 200) {
        let r = &run.result;
        assert!(!r.extrapolation_mse.is_finite(), "{}", r.extrapolation_mse);
        assert_eq!(r.status(), "not solved (extrapolation outputs beyond f32)");
    }
}
