//! Values with a first-order bound on their rounding error, for tolerances that follow from
//! the arithmetic rather than from one machine's bits.
//!
//! A [`Bounded`] holds the exact value of an expression (computed in f64 from the same f32
//! inputs) and a bound on how far an evaluation in a precision with unit roundoff `u` can be
//! from it, whatever order its sums are taken in:
//!
//! - a sum of `n` terms: the terms' own errors plus `(n − 1)·u·Σ|term|` (Higham's `γ_{n−1}`
//!   bound, which holds for any summation order); a difference counts as a sum of two terms, so
//!   `a − b` and `a·c − b·c` get the same bound however an implementation rearranges them;
//! - a product: `|a|·e_b + |b|·e_a + u·|ab|`;
//! - `exp`, `ln`, `tanh`, `σ`: the argument's error times the derivative, plus [`FN_ULPS`] ulp
//!   (`2u` each) for the function itself (for `σ`, ulp of `max(σ, 1 − σ)`).
//!
//! The bounds are first order; tests allow twice the bound for the neglected second-order
//! terms. They are bounds for well-defined values: where a gate saturates, the bound grows
//! with the term it multiplies, as the rounding of the gate does.

#![allow(dead_code)] // each test binary uses a different subset

use std::ops::{Add, Mul, Neg, Sub};

/// Unit roundoff of f32 (`2⁻²⁴`, half of `f32::EPSILON`).
pub const U32: f64 = f32::EPSILON as f64 / 2.0;
/// Unit roundoff of f64.
pub const U64: f64 = f64::EPSILON / 2.0;
/// Accuracy assumed of the elementary functions (`exp`, `ln`, `tanh`, `σ`), in ulp: this
/// crate's own are tested to within 2 ulp (3 for σ); Burn's backends use their platform's
/// libm or their own polynomials, accurate to a few ulp.
pub const FN_ULPS: f64 = 4.0;

/// A value and a bound on its rounding error at unit roundoff `u`.
#[derive(Clone, Copy, Debug)]
pub struct Bounded {
    pub v: f64,
    pub e: f64,
    pub u: f64,
}

impl Bounded {
    /// An exactly known input (a stored f32 weight or input).
    pub fn exact(v: f64, u: f64) -> Self {
        Self { v, e: 0.0, u }
    }

    fn with(self, v: f64, e: f64) -> Self {
        Self { v, e, u: self.u }
    }

    /// A function with derivative `d` at the argument, accurate to [`FN_ULPS`] ulp.
    fn function(self, v: f64, d: f64) -> Self {
        self.with(v, d.abs() * self.e + FN_ULPS * 2.0 * self.u * v.abs())
    }

    pub fn exp(self) -> Self {
        let v = self.v.exp();
        self.function(v, v)
    }

    pub fn ln(self) -> Self {
        self.function(self.v.ln(), 1.0 / self.v)
    }

    pub fn tanh(self) -> Self {
        let v = self.v.tanh();
        self.function(v, 1.0 - v * v)
    }

    /// `σ` to [`FN_ULPS`] ulp of `max(σ, 1 − σ)`: an absolute accuracy, since a sigmoid built
    /// as `½ + ½·tanh(x/2)` (as the reference path does in f64) cancels in its lower tail.
    pub fn sigmoid(self) -> Self {
        let v = 1.0 / (1.0 + (-self.v).exp());
        let e = v * (1.0 - v) * self.e + FN_ULPS * 2.0 * self.u * v.max(1.0 - v);
        self.with(v, e)
    }

    pub fn abs(self) -> Self {
        self.with(self.v.abs(), self.e)
    }

    /// `1 − self`.
    pub fn one_minus(self) -> Self {
        Bounded::exact(1.0, self.u) - self
    }

    /// A scalar multiple by an exactly representable constant (a power of two: no rounding).
    pub fn scale(self, c: f64) -> Self {
        self.with(c * self.v, c.abs() * self.e)
    }

    /// `self / d` for a denominator bounded away from 0.
    pub fn div(self, d: Bounded) -> Self {
        let v = self.v / d.v;
        let e = self.e / d.v.abs() + v.abs() * d.e / d.v.abs() + self.u * v.abs();
        self.with(v, e)
    }

    /// Whether `got` is within twice the bound of the exact value.
    pub fn admits(&self, got: f64) -> bool {
        (got - self.v).abs() <= 2.0 * self.e
    }
}

/// `Σ terms` in any order.
pub fn sum(terms: impl IntoIterator<Item = Bounded>) -> Bounded {
    let terms: Vec<Bounded> = terms.into_iter().collect();
    let u = terms.first().map_or(U32, |t| t.u);
    let n = terms.len() as f64;
    let v = terms.iter().map(|t| t.v).sum();
    let magnitude: f64 = terms.iter().map(|t| t.v.abs()).sum();
    let e = terms.iter().map(|t| t.e).sum::<f64>() + (n - 1.0).max(0.0) * u * magnitude;
    Bounded { v, e, u }
}

impl Add for Bounded {
    type Output = Bounded;
    fn add(self, o: Bounded) -> Bounded {
        sum([self, o])
    }
}

impl Sub for Bounded {
    type Output = Bounded;
    fn sub(self, o: Bounded) -> Bounded {
        sum([self, -o])
    }
}

impl Neg for Bounded {
    type Output = Bounded;
    fn neg(self) -> Bounded {
        self.with(-self.v, self.e)
    }
}

impl Mul for Bounded {
    type Output = Bounded;
    fn mul(self, o: Bounded) -> Bounded {
        let v = self.v * o.v;
        self.with(
            v,
            self.v.abs() * o.e + o.v.abs() * self.e + self.u * v.abs(),
        )
    }
}

/// `a·b` for row-major `[n, k]` and `[k, m]` matrices.
pub fn matmul(a: &[Bounded], b: &[Bounded], n: usize, k: usize, m: usize) -> Vec<Bounded> {
    (0..n * m)
        .map(|idx| {
            let (i, j) = (idx / m, idx % m);
            sum((0..k).map(|l| a[i * k + l] * b[l * m + j]))
        })
        .collect()
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub fn transpose(a: &[Bounded], rows: usize, cols: usize) -> Vec<Bounded> {
    (0..rows * cols)
        .map(|idx| a[(idx % rows) * cols + idx / rows])
        .collect()
}

/// The parameters of one NALU layer, row-major `[d_in, d_out]` f32 values given as f64.
pub struct NaluParams<'a> {
    pub w_hat: &'a [f64],
    pub m_hat: &'a [f64],
    /// `G`; `None` for an ungated layer (`y = a + m`).
    pub gate: Option<&'a [f64]>,
    pub epsilon: f64,
    pub d_in: usize,
    pub d_out: usize,
}

/// The intermediate values of a NALU layer's forward pass.
pub struct NaluForward {
    pub t: Vec<Bounded>,
    pub s: Vec<Bounded>,
    pub w: Vec<Bounded>,
    pub logs: Vec<Bounded>,
    pub a: Vec<Bounded>,
    pub m: Vec<Bounded>,
    /// `σ(x·G)`; empty for an ungated layer.
    pub g: Vec<Bounded>,
    pub y: Vec<Bounded>,
}

fn exact_all(v: &[f64], u: f64) -> Vec<Bounded> {
    v.iter().map(|&v| Bounded::exact(v, u)).collect()
}

impl NaluParams<'_> {
    /// `y = g⊙a + (1 − g)⊙m` (ungated: `a + m`) with `a = x·W`, `m = exp(log(|x| + ε)·W)`,
    /// `g = σ(x·G)`, `W = tanh(Ŵ)⊙σ(M̂)`, for `x: [rows, d_in]` (itself bounded, so layers
    /// chain).
    pub fn forward(&self, x: &[Bounded]) -> NaluForward {
        let u = x[0].u;
        let (rows, d_in, d_out) = (x.len() / self.d_in, self.d_in, self.d_out);
        let t: Vec<Bounded> = exact_all(self.w_hat, u).iter().map(|w| w.tanh()).collect();
        let s: Vec<Bounded> = exact_all(self.m_hat, u)
            .iter()
            .map(|m| m.sigmoid())
            .collect();
        let w: Vec<Bounded> = t.iter().zip(&s).map(|(&t, &s)| t * s).collect();
        let eps = Bounded::exact(self.epsilon, u);
        let logs: Vec<Bounded> = x.iter().map(|&x| (x.abs() + eps).ln()).collect();
        let a = matmul(x, &w, rows, d_in, d_out);
        let m: Vec<Bounded> = matmul(&logs, &w, rows, d_in, d_out)
            .into_iter()
            .map(Bounded::exp)
            .collect();
        let (g, y) = match self.gate {
            Some(gate) => {
                let g: Vec<Bounded> = matmul(x, &exact_all(gate, u), rows, d_in, d_out)
                    .into_iter()
                    .map(Bounded::sigmoid)
                    .collect();
                let y = (0..a.len())
                    .map(|k| g[k] * a[k] + g[k].one_minus() * m[k])
                    .collect();
                (g, y)
            }
            None => (Vec::new(), a.iter().zip(&m).map(|(&a, &m)| a + m).collect()),
        };
        NaluForward {
            t,
            s,
            w,
            logs,
            a,
            m,
            g,
            y,
        }
    }
}

/// A gated NALU layer's output and the gradients of `Σ y²`, with their bounds.
pub struct NaluReference {
    pub y: Vec<Bounded>,
    pub dx: Vec<Bounded>,
    pub dw_hat: Vec<Bounded>,
    pub dm_hat: Vec<Bounded>,
    pub dgate: Vec<Bounded>,
}

/// A gated layer's forward pass on `x: [batch, d_in]` (exact inputs) and the gradients of
/// `L = Σ y²`, bounded at unit roundoff `u`.
pub fn gated_nalu(p: &NaluParams, x: &[f64], u: f64) -> NaluReference {
    let gate = exact_all(p.gate.expect("a gated layer"), u);
    let x = exact_all(x, u);
    let (batch, d_in, d_out) = (x.len() / p.d_in, p.d_in, p.d_out);
    let f = p.forward(&x);
    let (t, s, g, m, a) = (&f.t, &f.s, &f.g, &f.m, &f.a);
    // Backward of L = Σ y²: dy = 2y, then the chain rule through each formula above.
    let dy: Vec<Bounded> = f.y.iter().map(|y| y.scale(2.0)).collect();
    let da: Vec<Bounded> = (0..dy.len()).map(|k| dy[k] * g[k]).collect();
    let dl: Vec<Bounded> = (0..dy.len())
        .map(|k| dy[k] * g[k].one_minus() * m[k])
        .collect();
    let dz: Vec<Bounded> = (0..dy.len())
        .map(|k| dy[k] * (a[k] - m[k]) * g[k] * g[k].one_minus())
        .collect();
    let (x_t, logs_t) = (transpose(&x, batch, d_in), transpose(&f.logs, batch, d_in));
    let dw_a = matmul(&x_t, &da, d_in, batch, d_out);
    let dw_l = matmul(&logs_t, &dl, d_in, batch, d_out);
    let dw: Vec<Bounded> = dw_a.iter().zip(&dw_l).map(|(&a, &l)| a + l).collect();
    let dgate = matmul(&x_t, &dz, d_in, batch, d_out);
    let dw_hat = (0..dw.len())
        .map(|k| dw[k] * s[k] * (t[k] * t[k]).one_minus())
        .collect();
    let dm_hat = (0..dw.len())
        .map(|k| dw[k] * t[k] * s[k] * s[k].one_minus())
        .collect();
    // dx = da·Wᵀ + (dl·Wᵀ)⊙sign(x)/(|x| + ε) + dz·Gᵀ.
    let (w_t, gate_t) = (transpose(&f.w, d_in, d_out), transpose(&gate, d_in, d_out));
    let through_a = matmul(&da, &w_t, batch, d_out, d_in);
    let through_l = matmul(&dl, &w_t, batch, d_out, d_in);
    let through_g = matmul(&dz, &gate_t, batch, d_out, d_in);
    let eps = Bounded::exact(p.epsilon, u);
    let dx = (0..x.len())
        .map(|k| {
            let dlog = Bounded::exact(x[k].v.signum(), u).div(x[k].abs() + eps);
            through_a[k] + through_l[k] * dlog + through_g[k]
        })
        .collect();
    NaluReference {
        y: f.y,
        dx,
        dw_hat,
        dm_hat,
        dgate,
    }
}

/// Panics unless every `got[i]` is within twice `want[i]`'s bound, naming `what` and the worst.
pub fn assert_within(got: &[f64], want: &[Bounded], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            w.admits(*g),
            "{what}[{i}]: got {g}, exact {} ± {:e} (off by {:e})",
            w.v,
            2.0 * w.e,
            (g - w.v).abs()
        );
    }
}
