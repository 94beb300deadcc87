//! The arithmetic targets of the tasks, `y = op(a, b)`: their names, formulas and values.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use super::names::parse_name;

/// The arithmetic target of a static task, `y = op(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, "task", &Operation::ALL, Operation::name)
    }
}
