//! The one error type for invalid settings: layer and training configs, environment variables.

use core::fmt;

/// An invalid value in a configuration or an environment variable.
///
/// Returned by the `validate` method of every config in this crate (and carried by the panic of
/// its `init`). The message names the config, the field and the value that was refused, for
/// example `NaluConfig.epsilon must be finite and greater than 0, got -0.001`; for an
/// environment variable it names the variable (`BURN_NALU_SIMD must be one of …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    config: &'static str,
    field: &'static str,
    reason: String,
}

impl ConfigError {
    /// The name of the config type, such as `"NaluConfig"` (empty for an environment variable).
    pub fn config(&self) -> &'static str {
        self.config
    }

    /// The name of the refused field, such as `"epsilon"`, or of the environment variable.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// An error for `config.field`, whose value `reason` explains (`"must be …, got …"`).
    pub fn new(config: &'static str, field: &'static str, reason: String) -> Self {
        Self {
            config,
            field,
            reason,
        }
    }

    /// An error for the environment variable `var`.
    pub(crate) fn env(var: &'static str, reason: String) -> Self {
        Self::new("", var, reason)
    }

    /// Refuses a layer size of zero.
    pub fn check_size(config: &'static str, field: &'static str, value: usize) -> Result<(), Self> {
        if value == 0 {
            return Err(Self::new(config, field, "must be at least 1, got 0".into()));
        }
        Ok(())
    }

    /// Refuses a value that is not finite or not strictly positive.
    pub fn check_positive(
        config: &'static str,
        field: &'static str,
        value: f64,
    ) -> Result<(), Self> {
        if !(value.is_finite() && value > 0.0) {
            let reason = format!("must be finite and greater than 0, got {value}");
            return Err(Self::new(config, field, reason));
        }
        Ok(())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.config {
            "" => write!(f, "{} {}", self.field, self.reason),
            config => write!(f, "{config}.{} {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_zero_is_refused_with_field_name() {
        let err = ConfigError::check_size("NacConfig", "d_output", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NacConfig.d_output must be at least 1, got 0"
        );
        assert_eq!((err.config(), err.field()), ("NacConfig", "d_output"));
        assert!(ConfigError::check_size("NacConfig", "d_output", 1).is_ok());
    }

    #[test]
    fn non_positive_or_non_finite_is_refused() {
        for bad in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
            let err = ConfigError::check_positive("NaluConfig", "epsilon", bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("NaluConfig.epsilon must be finite and greater than 0, got {bad}")
            );
        }
        assert!(ConfigError::check_positive("NaluConfig", "epsilon", 1e-7).is_ok());
    }
}
