//! The six static-toy operations and the reference's training recipe for each.

use core::fmt;
use core::str::FromStr;

use serde::Serialize;

/// The arithmetic target of a static-toy task, `y = op(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// `a²`
    Square,
    /// `√a`
    Sqrt,
}

/// The learning rate and epoch count the Keras reference used for a task (all RMSProp).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Learning rate.
    pub lr: f64,
    /// Number of epochs.
    pub epochs: usize,
}

impl Operation {
    /// All six operations, in the reference's order.
    pub const ALL: [Operation; 6] = [
        Operation::Add,
        Operation::Sub,
        Operation::Mul,
        Operation::Div,
        Operation::Square,
        Operation::Sqrt,
    ];

    /// The task name used on the command line and in reports (`add`, `sub`, …).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Sub => "sub",
            Operation::Mul => "mul",
            Operation::Div => "div",
            Operation::Square => "square",
            Operation::Sqrt => "sqrt",
        }
    }

    /// The formula, as the reference's results table writes it (`a + b`, `a ^ 2`, …).
    pub fn formula(self) -> &'static str {
        match self {
            Operation::Add => "a + b",
            Operation::Sub => "a - b",
            Operation::Mul => "a * b",
            Operation::Div => "a / b",
            Operation::Square => "a ^ 2",
            Operation::Sqrt => "sqrt(a)",
        }
    }

    /// `op(a, b)`.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Operation::Add => a + b,
            Operation::Sub => a - b,
            Operation::Mul => a * b,
            Operation::Div => a / b,
            Operation::Square => a * a,
            Operation::Sqrt => a.sqrt(),
        }
    }

    /// The reference's recipe: add 0.1/500, sub 0.2/1000, mul 0.1/500, div 0.02/1000,
    /// square 0.1/2000, sqrt 0.01/2000.
    pub fn reference_recipe(self) -> Recipe {
        let (lr, epochs) = match self {
            Operation::Add => (0.1, 500),
            Operation::Sub => (0.2, 1000),
            Operation::Mul => (0.1, 500),
            Operation::Div => (0.02, 1000),
            Operation::Square => (0.1, 2000),
            Operation::Sqrt => (0.01, 2000),
        };
        Recipe { lr, epochs }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Operation::ALL.iter().map(|op| op.name()).collect();
                format!("unknown task '{s}' (expected one of {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for op in Operation::ALL {
            assert_eq!(op.name().parse::<Operation>(), Ok(op));
        }
        assert_eq!(
            "pow".parse::<Operation>().unwrap_err(),
            "unknown task 'pow' (expected one of add, sub, mul, div, square, sqrt)"
        );
    }

    #[test]
    fn apply_computes_each_operation() {
        let got: Vec<f64> = Operation::ALL.iter().map(|op| op.apply(9.0, 3.0)).collect();
        assert_eq!(got, [12.0, 6.0, 27.0, 3.0, 81.0, 3.0]);
    }
}
