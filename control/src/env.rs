//! Reading configuration from environment variables: the small rules every binary's
//! `Config::from_env` shares, so that "unset", "blank" and "cannot parse" mean the same
//! thing in the gateway and the workers, and every error names its variable.
//!
//! Two readings of a value exist because the binaries have always differed and a
//! deployment must not change meaning: [`var`] keeps the value as set (the gateway's keys
//! and URLs), [`trimmed`] drops surrounding whitespace (the worker's settings).

use std::str::FromStr;

/// `name` if it is set and not blank, exactly as set.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `name` if it is set and not blank, without surrounding whitespace.
pub fn trimmed(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// [`trimmed`] `name`, or `default` when unset or blank.
pub fn or(name: &str, default: &str) -> String {
    trimmed(name).unwrap_or_else(|| default.to_string())
}

/// `name` parsed as a `T`, or `default` when unset or blank.
/// The error names the variable and quotes the value: ``NAME: cannot parse `value` ``.
pub fn parse<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}: cannot parse `{v}`")),
    }
}

/// `name` parsed as a `T` that passes `valid`, or `default` when unset or blank.
/// The error says what was expected: `NAME must be <expected>`.
pub fn parse_valid<T: FromStr>(
    name: &str,
    default: T,
    expected: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, String> {
    match trimmed(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|t| valid(t))
            .ok_or_else(|| format!("{name} must be {expected}")),
    }
}

/// A documented `0`/`1` switch: `default` when unset or blank. Anything else is refused
/// rather than guessed: `OP_COOKIE_SECURE=maybe` must not silently mean either.
pub fn switch(name: &str, default: bool) -> Result<bool, String> {
    match trimmed(name).as_deref() {
        None => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(v) => Err(format!("{name} must be 0 or 1, not `{v}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses variables of its own: the environment is shared by the test threads.

    #[test]
    fn switches_take_0_or_1_only() {
        std::env::set_var("OP_TEST_ENV_SWITCH_ON", "1");
        std::env::set_var("OP_TEST_ENV_SWITCH_OFF", " 0 ");
        std::env::set_var("OP_TEST_ENV_SWITCH_BAD", "maybe");
        assert_eq!(switch("OP_TEST_ENV_SWITCH_ON", false), Ok(true));
        assert_eq!(switch("OP_TEST_ENV_SWITCH_OFF", true), Ok(false));
        assert_eq!(switch("OP_TEST_ENV_SWITCH_NEVER_SET", true), Ok(true));
        assert_eq!(
            switch("OP_TEST_ENV_SWITCH_BAD", true),
            Err("OP_TEST_ENV_SWITCH_BAD must be 0 or 1, not `maybe`".to_string())
        );
    }

    #[test]
    fn blank_is_unset() {
        std::env::set_var("OP_TEST_ENV_BLANK", "  ");
        assert_eq!(var("OP_TEST_ENV_BLANK"), None);
        assert_eq!(trimmed("OP_TEST_ENV_BLANK"), None);
        assert_eq!(or("OP_TEST_ENV_BLANK", "d"), "d");
        assert_eq!(parse("OP_TEST_ENV_BLANK", 7u32), Ok(7));
        assert_eq!(var("OP_TEST_ENV_NEVER_SET"), None);
    }

    #[test]
    fn values_are_kept_or_trimmed() {
        std::env::set_var("OP_TEST_ENV_PADDED", " 42 ");
        assert_eq!(var("OP_TEST_ENV_PADDED").as_deref(), Some(" 42 "));
        assert_eq!(trimmed("OP_TEST_ENV_PADDED").as_deref(), Some("42"));
        assert_eq!(parse("OP_TEST_ENV_PADDED", 0u32), Ok(42));
        assert_eq!(
            parse_valid("OP_TEST_ENV_PADDED", 1u32, "a positive integer", |n| *n > 0),
            Ok(42)
        );
    }

    #[test]
    fn errors_name_the_variable() {
        std::env::set_var("OP_TEST_ENV_BAD", "x1");
        assert_eq!(
            parse::<u32>("OP_TEST_ENV_BAD", 0),
            Err("OP_TEST_ENV_BAD: cannot parse `x1`".to_string())
        );
        assert_eq!(
            parse_valid::<u32>("OP_TEST_ENV_BAD", 1, "a positive integer", |_| true),
            Err("OP_TEST_ENV_BAD must be a positive integer".to_string())
        );
        std::env::set_var("OP_TEST_ENV_ZERO", "0");
        assert!(
            parse_valid::<u32>("OP_TEST_ENV_ZERO", 1, "a positive integer", |n| *n > 0).is_err()
        );
    }
}
