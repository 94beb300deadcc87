//! The recipes of `burn_nalu::recipe` on a CSV file of your own: which arithmetic relates a
//! column to the others?
//!
//! ```text
//! cargo run --release --example fit_csv -- --data FILE --target COLUMN [--hidden 2]
//!     [--inits 8] [--steps N] [--seed 0]
//! ```
//!
//! FILE has a header row and numbers only. The rows are split three ways: the fifth whose inputs
//! are largest in magnitude are held out (so that their error measures extrapolation, which is
//! what an arithmetic unit promises), and the rest, shuffled by `--seed`, go three to training
//! and one to validation. Each recommended stack (NAU → NAU for sums, NAU → NMU for products,
//! NAU → naive NPU for ratios and powers) is fitted with its recipe, chosen on validation only;
//! per stack the command prints the formula read back, in the file's column names, and its
//! validation and held-out MSE. `--steps` shortens or lengthens every recipe, its regulariser
//! ramp scaled alike.
//!
//! A thin client of the library: everything but reading the file is `burn_nalu`'s public API.

use std::time::Instant;

use burn::tensor::Device;
use burn_nalu::formula::Discretize;
use burn_nalu::formula::{Naming, SnapOptions};
use burn_nalu::recipe::{FitProgress, Recipe, Rows, fit_with_progress};
use burn_nalu::{NauConfig, NmuConfig, RealNpuConfig, Stack};

struct Args {
    data: String,
    target: String,
    hidden: usize,
    inits: Option<usize>,
    steps: Option<usize>,
    seed: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let text = std::fs::read_to_string(&args.data).map_err(|e| format!("{}: {e}", args.data))?;
    let (names, x, y) = read_csv(&text, &args.target).map_err(|e| format!("{}: {e}", args.data))?;
    let (train, valid, held_out) =
        split(&x, &y, names.len(), args.seed).map_err(|e| e.to_string())?;
    println!(
        "{}: {} rows of {} inputs → {}; {} training, {} validation, {} held out (largest inputs)",
        args.data,
        y.len(),
        names.len(),
        args.target,
        train.rows(),
        valid.rows(),
        held_out.rows()
    );
    let naming = names
        .iter()
        .enumerate()
        .fold(Naming::new(), |n, (i, name)| n.with_group(name, &[i]));
    let (n, h) = (names.len(), args.hidden);
    let scaled = |recipe: Recipe| scale(recipe, &args);
    report(
        "NAU → NAU",
        &scaled(Recipe::new()),
        &args,
        (&train, &valid, &held_out),
        &naming,
        |d| Stack::new(NauConfig::new(n, h).init(d), NauConfig::new(h, 1).init(d)),
    )?;
    report(
        "NAU → NMU",
        &scaled(Recipe::products()),
        &args,
        (&train, &valid, &held_out),
        &naming,
        |d| Stack::new(NauConfig::new(n, h).init(d), NmuConfig::new(h, 1).init(d)),
    )?;
    report(
        "NAU → naive NPU",
        &scaled(Recipe::new()),
        &args,
        (&train, &valid, &held_out),
        &naming,
        |d| {
            Stack::new(
                NauConfig::new(n, h).init(d),
                RealNpuConfig::naive(h, 1).init(d),
            )
        },
    )
}

/// Fits one stack and prints its line.
fn report<A: Discretize, B: Discretize>(
    name: &str,
    recipe: &Recipe,
    args: &Args,
    (train, valid, held_out): (&Rows, &Rows, &Rows),
    naming: &Naming,
    init: impl Fn(&Device) -> Stack<A, B>,
) -> Result<(), String> {
    let device = Device::default();
    let started = Instant::now();
    let recipe = recipe.clone().with_seed(args.seed);
    // Progress on stderr, one line rewritten per evaluation.
    let mut progress = |p: &FitProgress| {
        let best = p.best_valid_mse;
        eprint!(
            "\r{name}: step {}/{}, best validation MSE {best:.2e}   ",
            p.step, p.steps
        );
    };
    let fitted = fit_with_progress(init, train, valid, &recipe, &device, &mut progress)
        .map_err(|e| format!("{name}: {e}"))?;
    eprint!("\r{:<70}\r", "");
    let (x, _) = valid.tensors(&device);
    let formula = match fitted.model.formula(x, &SnapOptions::default()) {
        Ok(f) => f.render(naming),
        Err(e) => format!("({e})"),
    };
    println!(
        "{name:<16} {} = {formula}\n{:<16} validation MSE {:.3e}, held-out MSE {:.3e} (initialisation {} of {}, {:.1} s)",
        args.target,
        "",
        fitted.valid_mse,
        held_out.mse(&fitted.model, &device),
        fitted.init + 1,
        fitted.inits_valid_mse.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The recipe with `--inits` and `--steps` applied (its evaluation period and regulariser ramp
/// scaled with the steps).
fn scale(recipe: Recipe, args: &Args) -> Recipe {
    let recipe = match args.inits {
        Some(n) => recipe.with_inits(n),
        None => recipe,
    };
    let Some(steps) = args.steps else {
        return recipe;
    };
    let at = |s: usize| (s as f64 * steps as f64 / recipe.steps as f64) as usize;
    let regularizer = recipe.regularizer.map(|mut r| {
        (r.start, r.end) = (at(r.start), at(r.end));
        r
    });
    let eval_every = at(recipe.eval_every).max(1);
    recipe
        .with_steps(steps)
        .with_regularizer(regularizer)
        .with_eval_every(eval_every)
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        data: String::new(),
        target: String::new(),
        hidden: 2,
        inits: None,
        steps: None,
        seed: 0,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, got {v}"))
        };
        match flag.as_str() {
            "--data" => args.data = value()?,
            "--target" => args.target = value()?,
            "--hidden" => args.hidden = number(value()?)? as usize,
            "--inits" => args.inits = Some(number(value()?)? as usize),
            "--steps" => args.steps = Some(number(value()?)? as usize),
            "--seed" => args.seed = number(value()?)?,
            other => {
                return Err(format!(
                    "unknown argument {other} (see the example's doc comment)"
                ));
            }
        }
    }
    if args.data.is_empty() || args.target.is_empty() {
        return Err("usage: fit_csv --data FILE --target COLUMN [--hidden 2] [--inits 8] [--steps N] [--seed 0]".into());
    }
    Ok(args)
}

/// A CSV file's input columns' names, its inputs (row-major) and the target of every row.
type Table = (Vec<String>, Vec<f32>, Vec<f32>);

/// The [`Table`] of `text` with `target` as the target column.
fn read_csv(text: &str, target: &str) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty file")?;
    let header: Vec<String> = header.split(',').map(|h| h.trim().to_string()).collect();
    let t = header
        .iter()
        .position(|h| h == target)
        .ok_or_else(|| format!("no column {target}; the columns are {}", header.join(", ")))?;
    let names = header
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != t)
        .map(|(_, h)| h.clone())
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (line, text) in lines {
        let cells: Vec<&str> = text.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            return Err(format!(
                "line {}: {} values, the header has {}",
                line + 1,
                cells.len(),
                header.len()
            ));
        }
        for (i, cell) in cells.iter().enumerate() {
            let v: f32 = cell.parse().map_err(|_| {
                format!(
                    "line {}, column {}: not a number: {cell}",
                    line + 1,
                    header[i]
                )
            })?;
            if i == t { y.push(v) } else { x.push(v) }
        }
    }
    Ok((names, x, y))
}

/// Training, validation and held-out rows (see the module's comment).
fn split(
    x: &[f32],
    y: &[f32],
    width: usize,
    seed: u64,
) -> Result<(Rows, Rows, Rows), burn_nalu::recipe::RecipeError> {
    let n = y.len();
    let size = |r: usize| {
        x[r * width..(r + 1) * width]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()))
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| size(a).total_cmp(&size(b)));
    let held = n / 5;
    let (inside, outside) = order.split_at(n - held);
    let mut inside = inside.to_vec();
    // A Fisher–Yates shuffle from a SplitMix64 stream of the seed.
    let mut state = seed;
    for i in (1..inside.len()).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        inside.swap(i, ((z ^ (z >> 31)) % (i as u64 + 1)) as usize);
    }
    let (train, valid) = inside.split_at(inside.len() * 3 / 4);
    let rows = |idx: &[usize]| {
        let xs = idx
            .iter()
            .flat_map(|&r| x[r * width..(r + 1) * width].iter().copied())
            .collect();
        Rows::new(xs, idx.iter().map(|&r| y[r]).collect(), width, 1)
    };
    Ok((rows(train)?, rows(valid)?, rows(outside)?))
}
