//! Queue names: the one value every bus operation is addressed by.
//!
//! A [`QueueName`] can only be obtained through [`QueueName::parse`], so every backend can rely on
//! it being a valid RabbitMQ queue name *and* a valid SQS queue name with room left for the
//! suffixes the bus derives from it (`-dlq`, `-retry-<ms>`).

use std::fmt;

/// Longest accepted name: SQS allows 80 characters and the dead-letter queue adds `-dlq`.
pub const MAX_QUEUE_NAME_LEN: usize = 76;

/// A validated queue name: 1 to 76 ASCII letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(String);

/// Why a string is not a usable queue name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue name {name:?}: {expected}")]
pub struct QueueNameError {
    pub name: String,
    /// What a queue name must look like, in words.
    pub expected: &'static str,
}

/// What [`QueueName::parse`] accepts, in words; also used in configuration errors.
pub const QUEUE_NAME_RULE: &str = "1 to 76 ASCII letters, digits, '-' or '_'";

impl QueueName {
    /// Accepts `name` if it is 1–76 ASCII letters, digits, `-` or `_`.
    pub fn parse(name: &str) -> Result<Self, QueueNameError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_QUEUE_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(QueueNameError { name: name.to_owned(), expected: QUEUE_NAME_RULE })
        }
    }

    /// A name known at compile time to satisfy the rule (a unit test checks each such constant).
    pub(crate) fn from_static(name: &'static str) -> Self {
        debug_assert!(Self::parse(name).is_ok(), "invalid built-in queue name {name}");
        Self(name.to_owned())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of this queue's dead-letter queue: `<name>-dlq`.
    pub fn dead_letter(&self) -> String {
        format!("{}-dlq", self.0)
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for QueueName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn accepts_sqs_and_amqp_compatible_names() {
        for name in ["notification-queue", "a", "Q_1-x", &"q".repeat(76)] {
            assert_eq!(QueueName::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(QueueName::parse("orders").unwrap().dead_letter(), "orders-dlq");
    }

    #[test]
    fn rejects_empty_long_and_odd_names() {
        for name in ["", &"q".repeat(77), "has space", "dots.are.amqp.only", "ünïcode", "slash/name"] {
            let err = QueueName::parse(name).unwrap_err();
            assert_eq!(err.name, name);
        }
    }
}
