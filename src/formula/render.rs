//! Rendering expressions as text: signs, runs of inputs, named groups, products and powers
//! (`a^2`, `a^0.5`).

use std::collections::BTreeMap;

use super::Expr;

impl Expr {
    /// The expression as text, with `naming`'s groups (see the [module docs](super)).
    pub fn render(&self, naming: &Naming) -> String {
        match self {
            Expr::Linear(map) => join_terms(linear_terms(map, naming)),
            Expr::Product {
                factors,
                magnitudes,
            } => render_product(factors, *magnitudes, naming),
            // A linear part with coefficient 1 (where `weighted_sum` puts it) needs no brackets.
            Expr::Sum(terms) => join_terms(
                terms
                    .iter()
                    .map(|(c, e)| match (c, e) {
                        (1, Expr::Linear(_)) => (1, e.render(naming)),
                        _ => (*c, e.render_operand(naming, false)),
                    })
                    .collect(),
            ),
        }
    }

    /// Whether the rendered text is a single term (no `+` or `−` at the top level).
    fn is_atomic(&self, naming: &Naming) -> bool {
        match self {
            Expr::Linear(map) => matches!(linear_terms(map, naming).as_slice(), [(1, _)]),
            Expr::Product { .. } => true,
            Expr::Sum(_) => false,
        }
    }

    /// The text as an operand: parenthesised when it has several terms (or, as a factor,
    /// when it is a product itself).
    fn render_operand(&self, naming: &Naming, as_factor: bool) -> String {
        let text = self.render(naming);
        let nested_product = as_factor && matches!(self, Expr::Product { .. });
        if self.is_atomic(naming) && !nested_product {
            text
        } else {
            format!("({text})")
        }
    }
}

/// `(coefficient, text)` terms of a linear map: named groups first, then runs and inputs.
fn linear_terms(map: &BTreeMap<usize, i64>, naming: &Naming) -> Vec<(i64, String)> {
    let coefs = group_coefficients(map, &naming.groups);
    let mut rest = map.clone();
    let mut terms = Vec::new();
    for ((name, indices), &c) in naming.groups.iter().zip(&coefs) {
        if c != 0 {
            indices
                .iter()
                .for_each(|&i| *rest.entry(i).or_insert(0) -= c);
            terms.push((c, name.clone()));
        }
    }
    rest.retain(|_, c| *c != 0);
    let entries: Vec<(usize, i64)> = rest.into_iter().collect();
    let mut k = 0;
    while k < entries.len() {
        let (start, c) = entries[k];
        let mut end = k + 1;
        while end < entries.len() && entries[end] == (start + end - k, c) {
            end += 1;
        }
        if end - k >= 3 {
            terms.push((c, format!("sum(x[{start}..{}])", start + end - k)));
        } else {
            terms.extend(entries[k..end].iter().map(|&(i, c)| (c, format!("x{i}"))));
        }
        k = end;
    }
    terms
}

/// Coefficients of the named groups that leave the fewest inputs outside them (then use the
/// fewest groups), searched over −3..=3 for up to three groups, so that overlapping groups
/// decompose (`a + b` with shared inputs); more groups are matched one at a time. Groups only
/// absorb coefficients: each input's remainder lies between 0 and its coefficient.
fn group_coefficients(map: &BTreeMap<usize, i64>, groups: &[(String, Vec<usize>)]) -> Vec<i64> {
    let leftover = |coefs: &[i64]| {
        let mut rest = map.clone();
        for ((_, indices), &c) in groups.iter().zip(coefs) {
            indices
                .iter()
                .for_each(|&i| *rest.entry(i).or_insert(0) -= c);
        }
        let absorbed = rest.iter().all(|(i, &r)| {
            let k = map.get(i).copied().unwrap_or(0);
            r == 0 || (r.signum() == k.signum() && r.abs() <= k.abs())
        });
        let used = coefs.iter().filter(|&&c| c != 0).count();
        absorbed.then_some((rest.values().filter(|&&c| c != 0).count(), used))
    };
    if groups.len() > 3 {
        return groups
            .iter()
            .map(|(_, indices)| {
                let c = indices
                    .first()
                    .and_then(|i| map.get(i))
                    .copied()
                    .unwrap_or(0);
                if indices.iter().all(|i| map.get(i) == Some(&c)) {
                    c
                } else {
                    0
                }
            })
            .collect();
    }
    let mut best = vec![0; groups.len()];
    let mut best_score = leftover(&best).expect("no groups absorb nothing");
    let combos = 7usize.pow(groups.len() as u32);
    for code in 0..combos {
        let coefs: Vec<i64> = (0..groups.len())
            .map(|g| (code / 7usize.pow(g as u32) % 7) as i64 - 3)
            .collect();
        if let Some(score) = leftover(&coefs)
            && score < best_score
        {
            (best, best_score) = (coefs, score);
        }
    }
    best
}

/// `t1 + t2 − 2·t3`; `0` when there are no terms.
fn join_terms(terms: Vec<(i64, String)>) -> String {
    if terms.is_empty() {
        return "0".to_owned();
    }
    let mut out = String::new();
    for (k, (c, text)) in terms.into_iter().enumerate() {
        let sign = match (k, c < 0) {
            (0, false) => "",
            (0, true) => "−",
            (_, false) => " + ",
            (_, true) => " − ",
        };
        let scale = match c.unsigned_abs() {
            1 => String::new(),
            n => format!("{n}·"),
        };
        out.push_str(&format!("{sign}{scale}{text}"));
    }
    out
}

fn render_product(factors: &[(Expr, f64)], magnitudes: bool, naming: &Naming) -> String {
    let factor = |f: &Expr, p: f64| {
        let base = if magnitudes {
            format!("|{}|", f.render(naming))
        } else {
            f.render_operand(naming, true)
        };
        match p.abs() {
            1.0 => base,
            n => format!("{base}^{n}"),
        }
    };
    let part = |positive: bool| -> Vec<String> {
        factors
            .iter()
            .filter(|(_, p)| (*p > 0.0) == positive)
            .map(|(f, p)| factor(f, *p))
            .collect()
    };
    let (num, den) = (part(true), part(false));
    let num = if num.is_empty() {
        "1".to_owned()
    } else {
        num.join("·")
    };
    match den.len() {
        0 => num,
        1 => format!("{num} / {}", den[0]),
        _ => format!("{num} / ({})", den.join("·")),
    }
}

/// Names for groups of inputs, used by [`Expr::render`] in place of their sum.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    groups: Vec<(String, Vec<usize>)>,
}

impl Naming {
    /// No groups: every input is `x{i}`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a group: when all of `indices` share one coefficient, they render as `name`.
    pub fn with_group(mut self, name: impl Into<String>, indices: &[usize]) -> Self {
        let mut indices = indices.to_vec();
        indices.sort_unstable();
        self.groups.push((name.into(), indices));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lin(terms: &[(usize, i64)]) -> Expr {
        Expr::Linear(terms.iter().copied().collect())
    }

    #[test]
    fn sums_render_with_signs_runs_and_groups() {
        let none = Naming::new();
        assert_eq!(
            lin(&[(3, 1), (17, 1), (42, -1)]).render(&none),
            "x3 + x17 − x42"
        );
        assert_eq!(lin(&[(0, -1), (5, 2)]).render(&none), "−x0 + 2·x5");
        assert_eq!(lin(&[]).render(&none), "0");
        let run: Vec<(usize, i64)> = (0..50).map(|i| (i, 1)).chain([(60, -1)]).collect();
        assert_eq!(lin(&run).render(&none), "sum(x[0..50]) − x60");
        let ab = Naming::new()
            .with_group("a", &[4, 1, 7])
            .with_group("b", &[2, 3]);
        assert_eq!(
            lin(&[(1, 1), (4, 1), (7, 1), (2, -1), (3, -1)]).render(&ab),
            "a − b"
        );
        // A group with mixed coefficients stays spelled out.
        assert_eq!(lin(&[(1, 1), (4, 1), (7, -1)]).render(&ab), "x1 + x4 − x7");
        // Overlapping groups: a = x0..x3, b = x2..x5 share x2; a + b puts 2 on x2.
        let overlap = Naming::new()
            .with_group("a", &[0, 1, 2])
            .with_group("b", &[2, 3, 4]);
        let a_plus_b = lin(&[(0, 1), (1, 1), (2, 2), (3, 1), (4, 1)]);
        assert_eq!(a_plus_b.render(&overlap), "a + b");
        assert_eq!(
            lin(&[(0, 1), (1, 1), (3, -1), (4, -1)]).render(&overlap),
            "a − b"
        );
        assert_eq!(
            lin(&[(0, 2), (1, 2), (2, 2), (9, 1)]).render(&overlap),
            "2·a + x9"
        );
    }

    #[test]
    fn products_render_factors_divisors_and_powers() {
        let n = Naming::new();
        let (x1, x2, x5) = (Expr::input(1), Expr::input(2), Expr::input(5));
        let sum12 = Expr::weighted_sum([(1, x1.clone()), (1, x2.clone())]);
        assert_eq!(
            Expr::product([(sum12.clone(), 1.0), (x5.clone(), 1.0)], false).render(&n),
            "(x1 + x2)·x5"
        );
        assert_eq!(
            Expr::product([(x1.clone(), 1.0), (x2.clone(), -1.0)], false).render(&n),
            "x1 / x2"
        );
        assert_eq!(
            Expr::product([(x1.clone(), 1.0), (x1.clone(), 1.0)], false).render(&n),
            "x1^2"
        );
        assert_eq!(
            Expr::product([(x1.clone(), -1.0), (x2.clone(), -1.0)], false).render(&n),
            "1 / (x1·x2)"
        );
        assert_eq!(Expr::product([(x1.clone(), 1.0)], false), x1);
        assert_eq!(
            Expr::product([(x1.clone(), 1.0), (x5, -1.0)], true).render(&n),
            "|x1| / |x5|"
        );
        assert_eq!(
            Expr::product([(x1.clone(), 1.0), (x2.clone(), -1.0)], true).render(&n),
            "|x1| / |x2|"
        );
        // Powers of halves (roots), as the power units read back.
        assert_eq!(
            Expr::product([(x1.clone(), 0.5)], false).render(&n),
            "x1^0.5"
        );
        assert_eq!(
            Expr::product([(x1, 1.5), (x2, -0.5)], false).render(&n),
            "x1^1.5 / x2^0.5"
        );
        let sum = Expr::weighted_sum([
            (1, sum12.clone()),
            (-1, Expr::product([(sum12, 2.0)], false)),
        ]);
        assert_eq!(sum.render(&n), "x1 + x2 − (x1 + x2)^2");
    }
}
