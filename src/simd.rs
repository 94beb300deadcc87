//! Which vector instructions this crate's own kernels use, pinned with `BURN_NALU_SIMD`.
//!
//! The fused layers and the vectorised `exp`/`tanh`/`ln` have an AVX-512, an AVX2+FMA and a
//! scalar copy of every loop. By default each process takes the widest the CPU has; the
//! environment variable `BURN_NALU_SIMD` (`scalar`, `avx2` or `avx512`) pins one, so that a
//! test run can exercise a copy the machine would not choose. Every copy computes the same
//! bits (the loops fix their order of operations and use fused multiply-adds explicitly), so
//! the level changes speed, not results. Burn's own kernels and the `gemm` crate choose their
//! instructions themselves and are not affected.

use core::fmt;
use std::sync::OnceLock;

use crate::ConfigError;

/// The environment variable that pins the level.
pub const SIMD_ENV: &str = "BURN_NALU_SIMD";

/// A set of vector instructions the crate's kernels can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain x86-64 (SSE2) or any other architecture; fused multiply-adds in software.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F (with AVX2 and FMA).
    Avx512,
}

impl SimdLevel {
    /// Every level, narrowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];

    /// The value of `BURN_NALU_SIMD` that selects this level.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                SimdLevel::Scalar => true,
                SimdLevel::Avx2 => has!("avx2") && has!("fma"),
                SimdLevel::Avx512 => has!("avx512f") && has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == SimdLevel::Scalar
        }
    }

    /// The widest level this CPU supports.
    pub fn best() -> SimdLevel {
        let supported = SimdLevel::ALL.into_iter().filter(|l| l.is_supported());
        supported.max().unwrap_or(SimdLevel::Scalar)
    }

    /// The level `value` (a `BURN_NALU_SIMD` setting) asks for: unset or empty means the best;
    /// an unknown name or a level this CPU lacks is an error that says which levels it has.
    pub fn from_setting(value: Option<&str>) -> Result<SimdLevel, ConfigError> {
        let value = match value.map(str::trim) {
            None | Some("") => return Ok(SimdLevel::best()),
            Some(v) => v,
        };
        let supported: Vec<&str> = SimdLevel::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .map(SimdLevel::name)
            .collect();
        let refuse = |why: String| Err(ConfigError::env(SIMD_ENV, why));
        match SimdLevel::ALL.into_iter().find(|l| l.name() == value) {
            None => refuse(format!(
                "must be one of scalar, avx2 or avx512, got '{value}'"
            )),
            Some(level) if !level.is_supported() => refuse(format!(
                "asks for {value}, which this CPU lacks (it supports {})",
                supported.join(", ")
            )),
            Some(level) => Ok(level),
        }
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The level this process's kernels use: `BURN_NALU_SIMD` if set, else the widest the CPU
/// supports; read once. An invalid setting is an error, never a silent fallback.
pub fn simd_level() -> Result<SimdLevel, ConfigError> {
    static LEVEL: OnceLock<Result<SimdLevel, ConfigError>> = OnceLock::new();
    LEVEL
        .get_or_init(|| SimdLevel::from_setting(std::env::var(SIMD_ENV).ok().as_deref()))
        .clone()
}

/// The level the kernels run at now: [`simd_level`], or the level a test pinned on its thread
/// with [`pinned`].
///
/// # Panics
/// With the message of [`simd_level`]'s error when `BURN_NALU_SIMD` is invalid.
#[doc(hidden)]
pub fn active() -> SimdLevel {
    if let Some(level) = PINNED.get() {
        return level;
    }
    simd_level().unwrap_or_else(|err| panic!("{err}"))
}

thread_local! {
    static PINNED: std::cell::Cell<Option<SimdLevel>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's kernels at `level` (tests compare the levels' bits).
#[doc(hidden)]
pub fn pinned<R>(level: SimdLevel, f: impl FnOnce() -> R) -> R {
    assert!(level.is_supported(), "{level} is not supported here");
    let before = PINNED.replace(Some(level));
    let out = f();
    PINNED.set(before);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_means_the_best_level() {
        assert_eq!(SimdLevel::from_setting(None), Ok(SimdLevel::best()));
        assert_eq!(SimdLevel::from_setting(Some(" ")), Ok(SimdLevel::best()));
        assert!(SimdLevel::best().is_supported());
    }

    #[test]
    fn every_supported_level_can_be_pinned_and_scalar_always() {
        assert_eq!(
            SimdLevel::from_setting(Some("scalar")),
            Ok(SimdLevel::Scalar)
        );
        for level in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
            assert_eq!(SimdLevel::from_setting(Some(level.name())), Ok(level));
        }
    }

    #[test]
    fn unknown_names_and_missing_instructions_are_errors() {
        let err = SimdLevel::from_setting(Some("sse4")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BURN_NALU_SIMD must be one of scalar, avx2 or avx512, got 'sse4'"
        );
        for level in SimdLevel::ALL.into_iter().filter(|l| !l.is_supported()) {
            let err = SimdLevel::from_setting(Some(level.name())).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("which this CPU lacks"), "{msg}");
        }
    }
}
