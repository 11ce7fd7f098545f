//! Typed configuration from the environment.
//!
//! Every variable is read once at start-up through [`Env`], which records each bad value instead
//! of stopping at the first one, so an operator sees all mistakes in one run. Each crate reads its
//! own variables with the same [`Env`] (`ServiceConfig::from_env`, `BusConfig::from_env`, a
//! service's own settings) and the binary calls [`Env::finish`] once.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// One variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: expected {expected}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub variable: String,
    pub value: String,
    /// What the variable accepts, in words.
    pub expected: String,
}

/// Every bad variable found while reading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per variable: this is what an operator reads in a crash-looping pod's log.
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "configuration error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A snapshot of environment variables plus the errors found while parsing them.
#[derive(Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    /// Variables whose value came from a secret store: an error about one never shows its value.
    secret: HashSet<String>,
    errors: Vec<ConfigError>,
}

impl Env {
    /// The process environment. Variables that are not valid unicode are kept out; a later read
    /// of such a variable falls back to its default, which is what an unset variable does.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// An environment made of the given pairs (tests, and `wharf up` which layers defaults).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), ..Self::default() }
    }

    /// Sets a variable unless it is already present: how a launcher supplies defaults.
    pub fn set_default(&mut self, name: &str, value: impl Into<String>) {
        self.vars.entry(name.to_owned()).or_insert_with(|| value.into());
    }

    /// Sets a variable to a value read from a secret store, replacing any other: a configuration
    /// error about it then says where the value came from instead of printing it.
    pub fn set_secret(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_owned(), value);
        self.secret.insert(name.to_owned());
    }

    /// The raw value of a variable, if set and not blank.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A string variable, or its default.
    pub fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// A variable parsed by `parse`; an unparsable value is recorded as an error (naming what
    /// the variable accepts) and the default is returned so reading can go on.
    pub fn parse<T>(&mut self, name: &str, default: T, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> T {
        let Some(value) = self.raw(name) else { return default };
        match parse(value) {
            Some(parsed) => parsed,
            None => {
                let value = self.shown(name, value).to_owned();
                let error = ConfigError { variable: name.to_owned(), value, expected: expected.to_owned() };
                self.errors.push(error);
                default
            }
        }
    }

    /// A variable that has no default: `None` when unset, or when its value cannot be used (the
    /// error is recorded, as for every other variable).
    pub fn optional<T>(&mut self, name: &str, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        self.raw(name)?;
        self.parse(name, None, expected, |v| parse(v).map(Some))
    }

    /// An unsigned integer within `range`.
    pub fn integer<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        self.parse(name, default, &expected, |v| v.parse::<T>().ok().filter(|n| range.contains(n)))
    }

    /// A boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
    pub fn boolean(&mut self, name: &str, default: bool) -> bool {
        self.parse(name, default, "true or false", |v| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        })
    }

    /// One of a fixed set of words (matched case-insensitively).
    pub fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let expected = choices.iter().map(|(word, _)| *word).collect::<Vec<_>>().join(" or ");
        self.parse(name, default, &expected, |v| {
            choices.iter().find(|(word, _)| word.eq_ignore_ascii_case(v)).map(|(_, value)| *value)
        })
    }

    /// Records an error found by a caller's own cross-variable check.
    pub fn reject(&mut self, name: &str, expected: &str) {
        let value = self.shown(name, self.raw(name).unwrap_or_default()).to_owned();
        self.errors.push(ConfigError { variable: name.to_owned(), value, expected: expected.to_owned() });
    }

    /// A value as an error may show it: hidden when it came from a secret.
    fn shown<'v>(&self, name: &str, value: &'v str) -> &'v str {
        if self.secret.contains(name) { "(read from a secret, not shown)" } else { value }
    }

    /// Ends reading: every recorded error, or nothing.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(ConfigErrors(self.errors)) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_recorded_and_the_default_returned() {
        let mut env = Env::from_pairs([("N", "seven"), ("B", "maybe")]);
        assert_eq!(env.integer("N", 3_u32, 1..=10), 3);
        assert!(env.boolean("B", true));
        let errors = env.finish().unwrap_err();
        assert_eq!(errors.0.len(), 2);
        assert_eq!(errors.to_string().lines().count(), 2);
    }

    #[test]
    fn a_bad_secret_value_is_reported_without_showing_it() {
        let mut env = Env::from_pairs([("DATABASE_URL", "plain")]);
        env.set_secret("DATABASE_URL", "mysql://user:hunter2@db/x".to_owned());
        let _ = env.parse("DATABASE_URL", String::new(), "a postgres:// URL", |v| {
            v.starts_with("postgres://").then(|| v.to_owned())
        });
        let text = env.finish().unwrap_err().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("DATABASE_URL") && text.contains("read from a secret"), "{text}");
    }

    #[test]
    fn optional_is_none_when_unset_and_records_a_bad_value() {
        let mut env = Env::from_pairs([("URL", "ftp://x"), ("OK", "https://x")]);
        let http = |v: &str| v.starts_with("http").then(|| v.to_owned());
        assert_eq!(env.optional("MISSING", "a URL", http), None);
        assert_eq!(env.optional("OK", "a URL", http).as_deref(), Some("https://x"));
        assert_eq!(env.optional("URL", "a URL", http), None);
        let errors = env.finish().unwrap_err();
        assert_eq!(
            errors.0,
            [ConfigError { variable: "URL".into(), value: "ftp://x".into(), expected: "a URL".into() }]
        );
    }
}
