//! Names of the experiments' enums, as the command line and results files write them.

/// The entry of `all` whose `name` is `s`, or an error naming `what` and every valid name:
/// `unknown task 'pow' (expected one of add, sub, …)`.
pub(crate) fn parse_name<T: Copy>(
    s: &str,
    what: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    all.iter().copied().find(|&v| name(v) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
        format!(
            "unknown {what} '{s}' (expected one of {})",
            names.join(", ")
        )
    })
}
