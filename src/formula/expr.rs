//! The expression type: sums of the inputs with integer coefficients, and products of powers
//! that are multiples of ½ (`a / b`, `a^2`, `a^0.5`).

use std::collections::BTreeMap;

/// An arithmetic expression over the inputs `x0, x1, …`: integer coefficients, and powers that
/// are multiples of ½ (exact in `f64`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `Σ c_i·x_i`: input index to its non-zero coefficient (empty: the constant 0).
    Linear(BTreeMap<usize, i64>),
    /// `Π f^p` over `(f, p)` with `p ≠ 0` (empty: the constant 1); with `magnitudes`, each
    /// factor is taken in absolute value first.
    Product {
        /// The factors and their powers (`1`, `−1`, `2`, `0.5`, …).
        factors: Vec<(Expr, f64)>,
        /// Whether each factor enters as `|f|`.
        magnitudes: bool,
    },
    /// `Σ c·e` of terms that are not all linear.
    Sum(Vec<(i64, Expr)>),
}

impl Expr {
    /// The input `x_i`.
    pub fn input(i: usize) -> Self {
        Expr::Linear(BTreeMap::from([(i, 1)]))
    }

    /// `Σ c·e`, merging linear terms and dropping zero coefficients.
    pub fn weighted_sum(terms: impl IntoIterator<Item = (i64, Expr)>) -> Self {
        let mut linear = BTreeMap::new();
        let mut others: Vec<(i64, Expr)> = Vec::new();
        for (c, e) in terms.into_iter().filter(|(c, _)| *c != 0) {
            match e {
                Expr::Linear(map) => {
                    for (i, k) in map {
                        *linear.entry(i).or_insert(0) += c * k;
                    }
                }
                Expr::Sum(inner) => others.extend(inner.into_iter().map(|(k, e)| (c * k, e))),
                product => others.push((c, product)),
            }
        }
        linear.retain(|_, c| *c != 0);
        if others.is_empty() {
            return Expr::Linear(linear);
        }
        if !linear.is_empty() {
            others.insert(0, (1, Expr::Linear(linear)));
        }
        match others.as_slice() {
            [(1, _)] => others.pop().expect("one term").1,
            _ => Expr::Sum(others),
        }
    }

    /// `Π f^p`, merging equal factors and dropping zero powers; one factor to the power 1
    /// without magnitudes is the factor itself.
    pub fn product(factors: impl IntoIterator<Item = (Expr, f64)>, magnitudes: bool) -> Self {
        let mut merged: Vec<(Expr, f64)> = Vec::new();
        for (f, p) in factors.into_iter().filter(|(_, p)| *p != 0.0) {
            match merged.iter_mut().find(|(g, _)| *g == f) {
                Some((_, q)) => *q += p,
                None => merged.push((f, p)),
            }
        }
        merged.retain(|(_, p)| *p != 0.0);
        if !magnitudes && merged.len() == 1 && merged[0].1 == 1.0 {
            return merged.pop().expect("one factor").0;
        }
        Expr::Product {
            factors: merged,
            magnitudes,
        }
    }

    /// The value on one input row.
    pub fn eval(&self, x: &[f64]) -> f64 {
        match self {
            Expr::Linear(map) => map.iter().map(|(&i, &c)| c as f64 * x[i]).sum(),
            Expr::Product {
                factors,
                magnitudes,
            } => factors
                .iter()
                .map(|(f, p)| {
                    let v = f.eval(x);
                    let v = if *magnitudes { v.abs() } else { v };
                    match p.fract() {
                        0.0 => v.powi(*p as i32),
                        _ => v.powf(*p),
                    }
                })
                .product(),
            Expr::Sum(terms) => terms.iter().map(|(c, e)| *c as f64 * e.eval(x)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_evaluate_what_they_render() {
        let x = [2.0, -3.0, 5.0];
        let a = Expr::weighted_sum([(1, Expr::input(0)), (1, Expr::input(2))]);
        assert_eq!(a.eval(&x), 7.0);
        let p = Expr::product([(a.clone(), 2.0), (Expr::input(1), -1.0)], false);
        assert_eq!(p.eval(&x), 49.0 / -3.0);
        let root = Expr::product([(Expr::input(2), 0.5), (a.clone(), 1.5)], false);
        assert_eq!(root.eval(&x), 5f64.sqrt() * 7f64.powf(1.5));
        let m = Expr::product([(Expr::input(1), 1.0)], true);
        assert_eq!(m.eval(&x), 3.0);
        assert_eq!(Expr::weighted_sum([(1, a), (-2, m)]).eval(&x), 1.0);
    }
}
