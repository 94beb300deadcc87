//! Vectorisable f32 `ln`, `exp`, `tanh` and sigmoid for the fused kernels, and `simd_fn!`, which
//! compiles a loop over them for the CPU's widest vectors.
//!
//! The standard library's scalar `f32::ln`/`exp`/`tanh` are calls the compiler cannot
//! vectorise, and in the fused NALU layer of the static toy they cost more than the matrix
//! products (6400 logarithms per step: 14.8 µs with `f32::ln`, 2.6 µs here with AVX-512). The versions
//! below are branch-free polynomials (every branch is a select), within 2 ulp of the correctly
//! rounded result (tested below), so loops over them become SIMD code. f64 keeps the standard
//! library ([`FastFloat`] for f64): it is the precision check, not the speed path.

use std::borrow::Cow;

use num_traits::Float;

/// The elementary functions the fused kernels need, fast where the type allows.
pub trait FastFloat: Float + Send + Sync + 'static {
    /// `e^x`.
    fn exp_fast(self) -> Self;
    /// `tanh x`.
    fn tanh_fast(self) -> Self;
    /// `ln x`.
    fn ln_fast(self) -> Self;
    /// `σ(x) = 1 / (1 + e^(−x))`, as `e^x / (1 + e^x)` for negative `x`: with `exp`'s argument
    /// `≤ 0` nothing overflows and both tails keep full precision (a select, not a branch).
    #[inline(always)]
    fn sigmoid_fast(self) -> Self {
        let e = (-self.abs()).exp_fast();
        let r = Self::one() / (Self::one() + e);
        if self >= Self::zero() { r } else { e * r }
    }
    /// `x` (f32 data, as the tasks draw it) in this type: borrowed as it is for f32.
    fn from_f32s(x: &[f32]) -> Cow<'_, [Self]>;
}

impl FastFloat for f64 {
    fn exp_fast(self) -> f64 {
        self.exp()
    }
    fn tanh_fast(self) -> f64 {
        self.tanh()
    }
    fn ln_fast(self) -> f64 {
        self.ln()
    }
    fn from_f32s(x: &[f32]) -> Cow<'_, [f64]> {
        Cow::Owned(x.iter().map(|&v| v as f64).collect())
    }
}

impl FastFloat for f32 {
    #[inline(always)]
    fn exp_fast(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        tanh_f32(self)
    }
    #[inline(always)]
    fn ln_fast(self) -> f32 {
        ln_f32(self)
    }
    fn from_f32s(x: &[f32]) -> Cow<'_, [f32]> {
        Cow::Borrowed(x)
    }
}

/// Defines `fn name<F: FastFloat>(…)` whose body runs in a copy compiled with AVX-512 (or AVX2
/// and FMA), whichever [`crate::simd`] selects (the widest the CPU has, or the level that
/// `BURN_NALU_SIMD` pins), so that its loops over [`FastFloat`] functions use the widest
/// vectors. Without FMA hardware the polynomials' `mul_add` become library calls: slower, the
/// same bits (both round once). (A closure cannot carry this: it would compile outside the copy.)
macro_rules! simd_fn {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<$F:ident: FastFloat>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name<$F: FastFloat>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body<$F: FastFloat>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512<$F: FastFloat>($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$F: FastFloat>($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                // SAFETY (both calls): `active` only returns levels the CPU supports.
                match $crate::simd::active() {
                    $crate::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::SimdLevel::Scalar => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

simd_fn! {
    /// `out[i] = log(|x[i]| + eps)`.
    pub fn log_abs<F: FastFloat>(x: &[F], eps: F, out: &mut [F]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v.abs() + eps).ln_fast();
        }
    }
}

/// `e^x` for an f32, within 2 ulp of the correctly rounded value (subnormal results within 1
/// ulp of their spacing), with `exp(−∞) = 0`, `exp(∞) = ∞`, NaN for NaN.
///
/// Method (Cephes' `expf`): `x = n·ln 2 + r` with `|r| ≤ ½ ln 2` (`ln 2` in two parts so `r` is
/// exact), `e^r` by a degree-7 polynomial, then `2^n` applied in two halves so neither factor
/// leaves the normal range.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Beyond these e^x rounds to ∞ or 0.
    const MAX: f32 = 88.722_84;
    const MIN: f32 = -103.972_08;
    // Adding 1.5·2^23 rounds x·log2(e) to the integer n and leaves n in the low mantissa bits:
    // an integer conversion without `as`, whose saturating semantics do not vectorise.
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(MIN, MAX);
    let shifted = xc * LOG2E + SHIFTER;
    let n = shifted - SHIFTER;
    let n_int = shifted.to_bits() as i32 - SHIFTER.to_bits() as i32;
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, xc));
    let p = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ]
    .iter()
    .fold(0.0f32, |acc, &c| acc.mul_add(r, c));
    let e = p.mul_add(r * r, r) + 1.0;
    let (n1, n2) = (n_int >> 1, n_int - (n_int >> 1));
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e * scale(n1) * scale(n2);
    // NaN went through as NaN (clamp keeps it).
    if x > MAX {
        f32::INFINITY
    } else if x < MIN {
        0.0
    } else {
        y
    }
}

/// `tanh x` for an f32, within 2 ulp: an odd polynomial near 0 (Cephes' `tanhf`), where
/// `1 − 2/(e^{2|x|} + 1)` would cancel, and that form elsewhere; saturates to ±1.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ]
    .iter()
    .fold(0.0f32, |acc, &c| acc.mul_add(z, c));
    let small = (p * z).mul_add(x, x);
    let large = (1.0 - 2.0 / (exp_f32(a + a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// Natural logarithm of an f32, within 1 ulp or so of the correctly rounded value, with IEEE
/// special cases (`ln 0 = −∞`, `ln ∞ = ∞`, NaN for negative or NaN input). Every branch is a
/// select, so loops over it vectorise. The polynomial uses fused multiply-adds, which round
/// the same on every CPU (in hardware where it has them), so results do not depend on the path.
///
/// Method (Cephes' `logf`): `x = m·2^e` with `m ∈ [√½, √2)`, `ln x = ln m + e·ln 2`, `ln m` by a
/// degree-9 polynomial in `f = m − 1`; `ln 2` is split in two parts so `e·ln 2` stays exact.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    const TWO_POW_23: f32 = 8_388_608.0;
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    // Subnormals are scaled into the normal range first.
    let subnormal = x < f32::MIN_POSITIVE;
    let scaled = if subnormal { x * TWO_POW_23 } else { x };
    let bits = scaled.to_bits();
    // m ∈ [½, 1), x = m·2^e.
    let mut e = ((bits >> 23) & 0xff) as i32 - 126 - if subnormal { 23 } else { 0 };
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < SQRT_HALF;
    e -= low as i32;
    let f = if low { m + m - 1.0 } else { m - 1.0 };
    let e = e as f32;
    let z = f * f;
    let p = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_5e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ]
    .iter()
    .fold(0.0f32, |acc, &c| acc.mul_add(f, c));
    let y = p * f * z - 2.121_944_4e-4 * e - 0.5 * z;
    let r = (f + y) + 0.693_359_4 * e;
    let r = if x > 0.0 {
        r
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else {
        f32::NAN
    };
    if x == f32::INFINITY { x } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{SimdLevel, pinned};

    /// The functions under test, applied through a `simd_fn!` loop so that each check runs the
    /// copy compiled for the level in force (`BURN_NALU_SIMD`, or `pinned`).
    #[derive(Clone, Copy, Debug)]
    enum Fun {
        Exp,
        Tanh,
        Ln,
        Sigmoid,
    }

    simd_fn! {
        fn apply<F: FastFloat>(fun: Fun, x: &[F], out: &mut [F]) {
            let pairs = out.iter_mut().zip(x);
            match fun {
                Fun::Exp => pairs.for_each(|(o, &v)| *o = v.exp_fast()),
                Fun::Tanh => pairs.for_each(|(o, &v)| *o = v.tanh_fast()),
                Fun::Ln => pairs.for_each(|(o, &v)| *o = v.ln_fast()),
                Fun::Sigmoid => pairs.for_each(|(o, &v)| *o = v.sigmoid_fast()),
            }
        }
    }

    /// Every level this CPU supports; scalar is always among them.
    fn levels() -> impl Iterator<Item = SimdLevel> {
        SimdLevel::ALL.into_iter().filter(|l| l.is_supported())
    }

    /// `fun` on `x` at every supported level; all levels must agree bit for bit.
    fn at_every_level(fun: Fun, x: &[f32]) -> Vec<f32> {
        let run = |level| {
            pinned(level, || {
                let mut out = vec![0.0; x.len()];
                apply(fun, x, &mut out);
                out
            })
        };
        let scalar = run(SimdLevel::Scalar);
        for level in levels() {
            let got = run(level);
            let same = got
                .iter()
                .zip(&scalar)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{fun:?}: {level} differs from scalar");
        }
        scalar
    }

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// Worst ulp error of `fun` against the f64 function `exact` over the inputs `x`.
    fn worst_ulps(fun: Fun, exact: fn(f64) -> f64, x: &[f32]) -> (u32, f32) {
        let got = at_every_level(fun, x);
        let mut worst = (0, 0.0f32);
        for (&x, &y) in x.iter().zip(&got) {
            let err = ulps(y, exact(x as f64) as f32);
            if err > worst.0 {
                worst = (err, x);
            }
        }
        worst
    }

    /// `n + 1` evenly spaced points of `[lo, hi]`.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect()
    }

    #[test]
    fn ln_f32_is_within_two_ulps_of_the_correctly_rounded_log() {
        // Every 97th f32 from the smallest subnormal to the largest finite value: about 22
        // million inputs, covering all exponents and mantissa patterns.
        let all: Vec<f32> = (1u32..0x7f80_0000)
            .step_by(97)
            .map(f32::from_bits)
            .collect();
        for chunk in all.chunks(1 << 22) {
            let (err, x) = worst_ulps(Fun::Ln, f64::ln, chunk);
            assert!(err <= 2, "{err} ulps at x = {x:e}");
        }
    }

    #[test]
    fn ln_f32_special_values() {
        let x = [
            1.0,
            0.0,
            -0.0,
            f32::INFINITY,
            -1.0,
            f32::NAN,
            f32::NEG_INFINITY,
        ];
        let y = at_every_level(Fun::Ln, &x);
        assert_eq!(
            y[..4],
            [0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY]
        );
        assert!(y[4..].iter().all(|v| v.is_nan()), "{y:?}");
    }

    #[test]
    fn log_abs_matches_the_scalar_formula() {
        let x: Vec<f32> = (-500..500).map(|i| i as f32 * 0.37).collect();
        for level in levels() {
            let mut got = vec![0.0; x.len()];
            pinned(level, || log_abs(&x, 1e-7, &mut got));
            for (&v, &l) in x.iter().zip(&got) {
                let exact = ((v.abs() + 1e-7) as f64).ln() as f32;
                assert!(
                    ulps(l, exact) <= 2 || (l - exact).abs() < 1e-7,
                    "{level}, x = {v}: {l} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn exp_f32_is_within_two_ulps() {
        // The whole range, normal and subnormal results, and a fine sweep near 0.
        for (lo, hi) in [(-103.9, 88.7), (-2.0, 2.0), (-1e-3, 1e-3)] {
            let (err, x) = worst_ulps(Fun::Exp, f64::exp, &grid(lo, hi, 2_000_000));
            assert!(err <= 2, "{err} ulps at x = {x:e}");
        }
    }

    #[test]
    fn exp_f32_special_values() {
        let x = [
            0.0,
            89.0,
            f32::INFINITY,
            -104.0,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let y = at_every_level(Fun::Exp, &x);
        assert_eq!(y[..5], [1.0, f32::INFINITY, f32::INFINITY, 0.0, 0.0]);
        assert!(y[5].is_nan());
    }

    #[test]
    fn tanh_and_sigmoid_are_within_two_ulps() {
        for (lo, hi) in [(-12.0, 12.0), (-0.7, 0.7), (-1e-3, 1e-3)] {
            let (err, x) = worst_ulps(Fun::Tanh, f64::tanh, &grid(lo, hi, 2_000_000));
            assert!(err <= 2, "tanh: {err} ulps at x = {x:e}");
        }
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Down to where σ leaves the normal range (its subnormal values are not compared).
        let (err, x) = worst_ulps(Fun::Sigmoid, sigmoid, &grid(-87.0, 30.0, 2_000_000));
        assert!(err <= 3, "sigmoid: {err} ulps at x = {x:e}");
        let tanh = at_every_level(Fun::Tanh, &[0.0, -30.0, f32::INFINITY, f32::NAN]);
        assert_eq!(tanh[..3], [0.0, -1.0, 1.0]);
        assert!(tanh[3].is_nan());
        let sigmoid = at_every_level(Fun::Sigmoid, &[-200.0, 200.0]);
        assert_eq!(sigmoid, [0.0, 1.0]);
    }
}
