//! The command line's arguments: the clap [`Cli`], its value parsers, and the training settings
//! they make (through the library's selection of tasks, models and recipes).

use std::path::PathBuf;

use burn_nalu::RegularizerSchedule;
use burn_nalu_lab::report::RunSettings;
use burn_nalu_lab::{
    Budget, ModelChoice, ModelKind, Operation, OptimizerKind, Protocol, StopRule, Task,
    TaskOptions, TrainConfig,
};
use clap::Parser;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

/// Train models of arithmetic units on the static arithmetic tasks (and their recurrent and
/// sequential forms) and report train and extrapolation loss, success rates and the learned
/// formulas.
#[derive(Parser, Debug)]
#[command(version)]
#[command(group(clap::ArgGroup::new("figure").args(["plot_success", "plot_headline", "plot_ranges"])))]
pub struct Cli {
    /// Task to run (repeatable; default: all six).
    #[arg(long = "task", value_name = "NAME", value_parser = names(&Operation::ALL, Operation::name))]
    pub tasks: Vec<Operation>,
    /// Model: one of the stacks below, all of them, or recommended (the stack and recipe
    /// this crate recommends for each task of the reference or madsen protocol); repeatable;
    /// default: nalu and recommended, nalu with --protocol madsen or mistry, nalu-rnn with
    /// recurrent, nau-cell and nmu-cell with sequential.
    #[arg(long = "model", value_name = "NAME", value_parser = model_choices())]
    pub models: Vec<Vec<ModelChoice>>,
    /// Data and success criterion: reference (the Keras reference's task), madsen (Madsen &
    /// Johansen 2020: overlapping subsets, fresh batches from U[1, 2), extrapolation U[2, 6),
    /// threshold from weights off by 1e-5, their recipes), mistry (Mistry et al.'s
    /// single-module division task), recurrent (the NALU paper's recurrent task: sums over
    /// sequences of 10 steps, extrapolation to 100 steps of doubled inputs) or sequential
    /// (Madsen & Johansen's running sums and products of digits, scored at every step).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "reference",
        value_parser = names(&Protocol::ALL, Protocol::name)
    )]
    pub protocol: Protocol,
    /// With --protocol madsen: size of each subset as a fraction of the inputs.
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    pub subset_ratio: Option<f64>,
    /// With --protocol madsen: fraction of a subset that a and b share.
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    pub overlap_ratio: Option<f64>,
    /// With --protocol madsen: training and validation inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    pub interpolation_range: Option<(f32, f32)>,
    /// With --protocol madsen: extrapolation inputs uniform in [LO, HI).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range)]
    pub extrapolation_range: Option<(f32, f32)>,
    /// With --protocol madsen, mistry, recurrent or sequential: rows of the validation and of
    /// the extrapolation split.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub eval_rows: Option<usize>,
    /// With --protocol mistry: inputs per row (2, or 10 as the authors; default 10).
    #[arg(long, value_name = "N")]
    pub inputs: Option<usize>,
    /// With --protocol mistry: which of the nine input ranges, 0 to 8 ([−20, −10] → [−40, −20],
    /// [−2, −1] → [−6, −2], [−1.2, −1.1] → [−6.1, −1.2], [−0.2, −0.1] → [−2, −0.2], [−2, 2] →
    /// [−6, −2] ∪ [2, 6], [0.1, 0.2] → [0.2, 2], [1, 2] → [2, 6], [1.1, 1.2] → [1.2, 6],
    /// [10, 20] → [20, 40]; default 6).
    #[arg(long, value_name = "K")]
    pub range: Option<usize>,
    /// With --protocol recurrent or sequential: steps of a training sequence (default 10; 2
    /// for sequential products).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub time: Option<usize>,
    /// With --protocol recurrent or sequential: steps of an extrapolation sequence (default
    /// 100; 1,000 for sequential sums, 20 for products).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub extrapolation_time: Option<usize>,
    /// Optimizer, with Keras's defaults (default: the model's recipe).
    #[arg(long, value_name = "NAME", value_parser = names(&OptimizerKind::ALL, OptimizerKind::name))]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate (default: the model's recipe).
    #[arg(long, value_parser = positive_f64)]
    pub lr: Option<f64>,
    /// Epochs over the training rows (reference protocol; default: the model's recipe).
    #[arg(long, value_parser = at_least_one)]
    pub epochs: Option<usize>,
    /// Optimizer steps (default: the model's recipe).
    #[arg(long, value_parser = at_least_one)]
    pub steps: Option<usize>,
    /// Evaluate every N steps (default: every epoch, or the recipe's period).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub eval_every: Option<usize>,
    /// Train the whole budget, without the madsen recipes' early stop.
    #[arg(long, conflicts_with = "early_stop_rule")]
    pub no_early_stop: bool,
    /// What the madsen recipes' early stop asks of a converged run on a plateau: `snapped`
    /// (the default: its weights fit validation no worse than snapped) or `plateau` (nothing
    /// more; the rule of the results written before `snapped`).
    #[arg(long, value_name = "RULE", value_parser = names(&StopRule::ALL, StopRule::name))]
    pub early_stop_rule: Option<StopRule>,
    /// Also stop a run whose validation MSE is more than 10 times its threshold once, after
    /// the regulariser's ramp, it has not improved by 1% for N evaluations, nor for the later
    /// half of the run (counted as given up).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub give_up: Option<usize>,
    /// Also try each run's best weights snapped to their discrete values, kept when they do no
    /// worse on validation; reported beside the plain results ("Success, snapped").
    #[arg(long)]
    pub snap: bool,
    /// Polish each run's best weights with Levenberg–Marquardt on training rows (f64), kept when
    /// they do better on validation; polished runs are reported under their own label.
    #[arg(long)]
    pub polish: bool,
    /// Train each seed from N initialisations and keep, per seed, the one with the lowest
    /// validation MSE (restarts chosen on validation data; reported with its count).
    /// (Default: the recipe's, 1 but for the recommended ×, ÷ and √.)
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub inits: Option<usize>,
    /// Final weight of the sparsity regulariser (default: the model's recipe; 0 turns it off).
    #[arg(long, value_name = "F", value_parser = non_negative_f64)]
    pub reg_lambda: Option<f64>,
    /// Step at which the regulariser starts to ramp up (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    pub reg_start: Option<usize>,
    /// Step at which the regulariser reaches its final weight (default: the model's recipe).
    #[arg(long, value_name = "STEP")]
    pub reg_end: Option<usize>,
    /// Mini-batch size (default: the recipe's, 64 reference, 128 madsen).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Width of the hidden layer (default: the recipe's, 2).
    #[arg(long, value_parser = at_least_one)]
    pub hidden: Option<usize>,
    /// Clip each parameter's gradient to this L2 norm (default: the recipe's, 1 for the NMRU
    /// as its authors ran it, no clipping for the others).
    #[arg(long, value_name = "F", value_parser = positive_f64)]
    pub clip_norm: Option<f64>,
    /// The first seed of the data, the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run K seeds, from --seed on, and report per task the success rate and medians.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = at_least_one)]
    pub seeds: usize,
    /// Run exactly these seeds (comma-separated) instead of --seed and --seeds: the seeds of a
    /// cell to rerun.
    #[arg(long, value_name = "LIST", value_delimiter = ',', num_args = 1.., conflicts_with_all = ["seed", "seeds"])]
    pub seed_list: Vec<u64>,
    /// Train at most N seeds as one population (default: all of a model's seeds of a task).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub population: Option<usize>,
    /// Train N populations at a time, on N threads (each with its share of the cores).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    pub jobs: usize,
    /// Write results.json, results.csv, summary.json and run.json (the settings) into DIR as
    /// each population finishes, with the best weights (MODEL-TASK-seedS.bpk) and loss plots
    /// (MODEL-TASK-seedS.svg) of each run.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in --out DIR: skip the populations whose results it holds, continue a
    /// cut-off population from its checkpoint; refuse if DIR was made with other settings.
    #[arg(long)]
    pub resume: bool,
    /// With --out DIR: write each population's whole training state into DIR every M minutes
    /// (default 10; MODEL-TASK-seedsA-B.checkpoint, removed once its results are written),
    /// where --resume continues it exactly as it would have gone on; 0: at every evaluation.
    #[arg(long, value_name = "M", value_parser = non_negative_f64)]
    pub checkpoint_every: Option<f64>,
    /// Print only the results.
    #[arg(long)]
    pub quiet: bool,
    /// Train nothing: plot the success rates of the results CSVs given with --from (each
    /// model and task with its Wilson 95% interval, beside Madsen & Johansen's published rate
    /// for the cells of their protocol that have one) into FILE, as SVG, and print them as a
    /// table.
    #[arg(long, value_name = "FILE", requires = "from")]
    pub plot_success: Option<PathBuf>,
    /// Train nothing: plot the success rates per input range of the single-module task's
    /// results CSVs given with --from, one file per range in the order of the ranges (each
    /// operation a panel, each model a line), into FILE, as SVG.
    #[arg(long, value_name = "FILE", requires = "from")]
    pub plot_ranges: Option<PathBuf>,
    /// With --plot-ranges: count a run as a success when its test MSE is below the Primer's
    /// ε-threshold of its operation and range (ε = 1e-4, on tasks of --inputs inputs) rather
    /// than below 1e-5.
    #[arg(long, requires = "plot_ranges")]
    pub primer_threshold: bool,
    /// Train nothing: the headline figure of the results CSVs given with --from (of Madsen &
    /// Johansen's task): per operation, the recipe that learned it in the most seeds, the same
    /// stack from one initialisation, and the best unit they published, into FILE as SVG; and
    /// the same as a table.
    #[arg(long, value_name = "FILE", requires = "from")]
    pub plot_headline: Option<PathBuf>,
    /// With --plot-success or --plot-headline: a results.csv to read (repeatable; cells in the
    /// order read; the cells of a `madsen-snapped-*.csv` from those files alone).
    #[arg(long, value_name = "CSV", requires = "figure")]
    pub from: Vec<PathBuf>,
    /// Train nothing: write the summary table of every results CSV in DIR (and Madsen &
    /// Johansen's table pooled over DIR's table runs) into DIR/summaries/, one Markdown file
    /// each, as the lab's documents link to them (`--summaries lab/results`).
    #[arg(long, value_name = "DIR", conflicts_with = "figure")]
    pub summaries: Option<PathBuf>,
}

/// A parser of the names of `all`, which `--help` and errors list.
fn names<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    let find = move |s: String| all.iter().copied().find(|&v| name(v) == s);
    PossibleValuesParser::new(all.iter().map(|&v| name(v)))
        .map(move |s| find(s).expect("one of the possible values"))
}

/// `--model`'s parser: the stacks of the one table (with their summaries in `--help`), `all`
/// and `recommended`.
fn model_choices() -> impl TypedValueParser<Value = Vec<ModelChoice>> {
    let stacks = ModelKind::ALL
        .iter()
        .map(|m| PossibleValue::new(m.name()).help(m.summary()));
    let more = [
        PossibleValue::new("all").help("Every stack above that reads the protocol's rows"),
        PossibleValue::new("recommended")
            .help("Each task's recommended stack and recipe (reference and madsen)"),
    ];
    PossibleValuesParser::new(stacks.chain(more)).map(|s| match s.as_str() {
        "all" => vec![ModelChoice::All],
        "recommended" => vec![ModelChoice::Recommended],
        name => vec![ModelChoice::Stack(name.parse().expect("a possible value"))],
    })
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number greater than 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number of at least 0, got {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1, got 0".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let parsed = s.split_once(',').and_then(|(lo, hi)| {
        Some((
            lo.trim().parse::<f32>().ok()?,
            hi.trim().parse::<f32>().ok()?,
        ))
    });
    match parsed {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok((lo, hi)),
        _ => Err(format!("expected LO,HI with LO < HI, got '{s}'")),
    }
}

impl Cli {
    /// The tasks and models asked for, defaults filled in ([`burn_nalu_lab::selection`]).
    pub fn selection(&self) -> (Vec<Operation>, Vec<ModelChoice>) {
        let models: Vec<ModelChoice> = self.models.iter().flatten().copied().collect();
        burn_nalu_lab::selection(self.protocol, &self.tasks, &models)
    }

    /// The protocol's task settings the arguments override.
    pub fn task_options(&self) -> TaskOptions {
        TaskOptions {
            subset_ratio: self.subset_ratio,
            overlap_ratio: self.overlap_ratio,
            interpolation_range: self.interpolation_range,
            extrapolation_range: self.extrapolation_range,
            eval_rows: self.eval_rows,
            inputs: self.inputs,
            range: self.range,
            time: self.time,
            extrapolation_time: self.extrapolation_time,
            no_early_stop: self.no_early_stop,
            early_stop_rule: self.early_stop_rule.is_some(),
        }
    }

    /// The model's recipe for `op` under `--protocol` ([`burn_nalu_lab::recipe`]), with what
    /// the command line overrides.
    fn config(&self, choice: ModelChoice, op: Operation) -> Result<TrainConfig, String> {
        let recipe = burn_nalu_lab::recipe(self.protocol, choice, op, self.inputs)
            .map_err(|e| e.to_string())?;
        let schedule = recipe.regularizer.unwrap_or(RegularizerSchedule {
            lambda: 0.0,
            start: 0,
            end: 0,
        });
        let regularizer = RegularizerSchedule {
            lambda: self.reg_lambda.unwrap_or(schedule.lambda),
            start: self.reg_start.unwrap_or(schedule.start),
            end: self.reg_end.unwrap_or(schedule.end),
        };
        let budget = match (self.epochs, self.steps) {
            (Some(e), _) => Budget::Epochs(e),
            (_, Some(s)) => Budget::Steps(s),
            _ => recipe.budget,
        };
        Ok(TrainConfig {
            optimizer: self.optimizer.unwrap_or(recipe.optimizer),
            lr: self.lr.unwrap_or(recipe.lr),
            budget,
            batch_size: self.batch_size.unwrap_or(recipe.batch_size),
            hidden: self.hidden.unwrap_or(recipe.hidden),
            clip_norm: self.clip_norm.map(|c| c as f32).or(recipe.clip_norm),
            regularizer: (regularizer.lambda > 0.0).then_some(regularizer),
            eval_every: self.eval_every.or(recipe.eval_every),
            early_stop_patience: recipe.early_stop_patience.filter(|_| !self.no_early_stop),
            early_stop_rule: self.early_stop_rule.unwrap_or(recipe.early_stop_rule),
            give_up_patience: self.give_up.or(recipe.give_up_patience),
            snap: self.snap || recipe.snap,
            polish: self.polish || recipe.polish,
            inits_per_seed: self.inits.unwrap_or(recipe.inits_per_seed),
            ..recipe
        })
    }

    /// The seeds to run: --seed-list, or --seeds from --seed on.
    pub fn seed_values(&self) -> Vec<u64> {
        match self.seed_list.is_empty() {
            true => (self.seed..self.seed + self.seeds as u64).collect(),
            false => self.seed_list.clone(),
        }
    }

    /// [`Cli::config`] of a cell that [`Cli::check_combinations`] accepted.
    pub fn checked_config(&self, choice: ModelChoice, op: Operation) -> TrainConfig {
        self.config(choice, op)
            .expect("every cell's recipe is checked before any is planned")
    }

    /// Refuses arguments that contradict each other or the chosen models, naming both (what
    /// the settings they make are refused for, the library says: [`Cli::check_configs`]).
    pub fn check_combinations(&self) -> Result<(), String> {
        if self.epochs.is_some() && self.steps.is_some() {
            return Err("--epochs contradicts --steps: give one budget".into());
        }
        if let Some(seed) =
            (self.seed_list.iter()).find(|&s| self.seed_list.iter().filter(|&t| t == s).count() > 1)
        {
            return Err(format!("--seed-list names seed {seed} more than once"));
        }
        if self.resume && self.out.is_none() {
            return Err("--resume needs --out DIR, the run to continue".into());
        }
        if self.checkpoint_every.is_some() && self.out.is_none() {
            return Err("--checkpoint-every needs --out DIR, where the checkpoints go".into());
        }
        let (tasks, choices) = self.selection();
        let models = choices
            .iter()
            .flat_map(|&c| {
                tasks
                    .iter()
                    .map(move |&op| self.config(c, op).map(|c| c.model))
            })
            .collect::<Result<Vec<ModelKind>, String>>()?;
        let reg_flags = [
            ("--reg-lambda", self.reg_lambda.is_some()),
            ("--reg-start", self.reg_start.is_some()),
            ("--reg-end", self.reg_end.is_some()),
        ];
        let reg_flag = reg_flags.iter().find(|(_, given)| *given).map(|(f, _)| *f);
        if let (Some(flag), Some(model)) = (reg_flag, models.iter().find(|m| !m.has_regularizer()))
        {
            return Err(format!(
                "{flag} contradicts --model {model}, which has no regulariser"
            ));
        }
        if self.reg_lambda == Some(0.0)
            && let Some((flag, _)) = reg_flags[1..].iter().find(|(_, given)| *given)
        {
            return Err(format!(
                "{flag} contradicts --reg-lambda 0, which turns the regulariser off"
            ));
        }
        Ok(())
    }

    /// Checks every cell's settings against the task before any training time is spent: the
    /// library refuses what it cannot train, and the message names the cell.
    pub fn check_configs(&self, task: &dyn Task) -> Result<(), String> {
        let (tasks, models) = self.selection();
        let protocol = task.protocol();
        for op in tasks {
            if !protocol.operations().contains(&op) {
                let ops: Vec<&str> = protocol.operations().iter().map(|o| o.name()).collect();
                return Err(format!(
                    "--task {op}: the {protocol} task has {} only",
                    ops.join(" and ")
                ));
            }
            let data = task.data(op, self.seed_values()[0]);
            for &choice in &models {
                let checked = self.checked_config(choice, op).validate_for(&data);
                checked.map_err(|e| format!("--model {} --task {op}: {e}", choice.name()))?;
            }
        }
        Ok(())
    }

    /// The settings that decide the results of a run in `--out DIR` (written to run.json): the
    /// task and every model's configuration for every task.
    pub fn settings(&self, task: &dyn Task) -> RunSettings {
        let (tasks, models) = self.selection();
        let cells = models
            .iter()
            .flat_map(|&c| tasks.iter().map(move |&op| (c, op)));
        RunSettings {
            protocol: task.settings(),
            configs: cells
                .map(|(c, op)| (format!("{}/{op}", c.name()), self.checked_config(c, op)))
                .collect(),
        }
    }
}
