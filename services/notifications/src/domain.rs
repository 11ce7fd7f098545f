//! The notification domain: what can be sent, to whom, and where a notification is in its life.

use std::str::FromStr;

use serde::{Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use wharf_contact::{EmailAddress, PhoneNumber};
use wharf_edge::{FieldErrors, Problem};

/// The channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Channel {
    /// An email.
    Email,
    /// A text message.
    Sms,
}

impl Channel {
    /// `Email` or `Sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "Email",
            Self::Sms => "Sms",
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "Email" => Ok(Self::Email),
            "Sms" => Ok(Self::Sms),
            _ => Err("must be Email or Sms".into()),
        }
    }
}

/// Where a notification goes: an email address for `Email`, an E.164 number for `Sms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// For `Email`.
    Email(EmailAddress),
    /// For `Sms`.
    Phone(PhoneNumber),
}

impl Recipient {
    /// Parses `raw` as the kind of address `channel` needs.
    pub fn parse(channel: Channel, raw: &str) -> Result<Self, String> {
        match channel {
            Channel::Email => EmailAddress::parse(raw).map(Self::Email),
            Channel::Sms => PhoneNumber::parse(raw).map(Self::Phone),
        }
    }

    pub(crate) fn from_stored(channel: Channel, raw: String) -> Self {
        match channel {
            Channel::Email => Self::Email(EmailAddress::from_stored(raw)),
            Channel::Sms => Self::Phone(PhoneNumber::from_stored(raw)),
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(address) => address.as_str(),
            Self::Phone(number) => number.as_str(),
        }
    }
}

impl Serialize for Recipient {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The text: 1–1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageText(String);

impl MessageText {
    /// The longest message, in characters.
    pub const MAX_CHARS: usize = 1000;

    /// Checks the length (after trimming, so a blank message is refused).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().chars().count() {
            0 => Err("must not be empty".into()),
            n if n > Self::MAX_CHARS => Err(format!("must be at most {} characters (got {n})", Self::MAX_CHARS)),
            _ => Ok(Self(raw.trim().to_owned())),
        }
    }

    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum DeliveryStatus {
    /// Accepted, not delivered yet.
    Pending,
    /// Delivered.
    Sent,
    /// Given up after its attempts.
    Failed,
}

impl DeliveryStatus {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Sent => "Sent",
            Self::Failed => "Failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        [Self::Pending, Self::Sent, Self::Failed]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(raw))
            .ok_or_else(|| "must be Pending, Sent or Failed".to_owned())
    }
}

/// A validated send request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The channel.
    pub channel: Channel,
    /// Where to.
    pub recipient: Recipient,
    /// What.
    pub message: MessageText,
}

impl NewNotification {
    /// Parses `{type, recipient, message}`; unknown fields are ignored.
    pub fn parse(body: &Value) -> Result<Self, Problem> {
        let mut errors = FieldErrors::new();
        let Some(object) = body.as_object() else {
            errors.add("body", "must be a JSON object");
            return Err(Problem::validation(errors));
        };
        let text = |field: &str| match object.get(field) {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err("must be a string".to_owned()),
        };
        let channel = text("type").and_then(|t| t.parse::<Channel>());
        let recipient = match (&channel, text("recipient")) {
            (Ok(channel), Ok(raw)) => Recipient::parse(*channel, &raw),
            (_, Err(err)) => Err(err),
            // Without a valid type the recipient cannot be judged; the type error says why.
            (Err(_), Ok(_)) => Ok(Recipient::Email(EmailAddress::from_stored(String::new()))),
        };
        let message = text("message").and_then(|m| MessageText::parse(&m));
        let channel = channel.map_err(|m| errors.add("type", m)).ok();
        let recipient = recipient.map_err(|m| errors.add("recipient", m)).ok();
        let message = message.map_err(|m| errors.add("message", m)).ok();
        match (channel, recipient, message) {
            (Some(channel), Some(recipient), Some(message)) => Ok(Self { channel, recipient, message }),
            _ => Err(Problem::validation(errors)),
        }
    }
}

/// A stored notification, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Assigned by the store.
    pub id: i64,
    /// `Email` or `Sms`.
    #[serde(rename = "type")]
    pub channel: Channel,
    /// Email address or E.164 number.
    #[schema(value_type = String)]
    pub recipient: Recipient,
    /// The text.
    #[schema(value_type = String)]
    pub message: MessageText,
    /// Pending, Sent or Failed.
    pub status: DeliveryStatus,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it was delivered.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<OffsetDateTime>,
    /// The order it confirms, for notifications made from OrderPlaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
}

/// The send body, for the OpenAPI document: the recipient's form follows the type.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(tag = "type")]
pub enum SendInput {
    Email {
        #[schema(example = "ada@example.com", format = Email)]
        recipient: String,
        /// 1–1000 characters after trimming.
        #[schema(example = "Your order has shipped.", min_length = 1, max_length = 1000)]
        message: String,
    },
    Sms {
        /// E.164 (`+`, then 8–15 digits not starting with 0); spaces, dashes, dots and parentheses are removed.
        #[schema(
            example = "+442079460958",
            pattern = "^[ \\t\\n\\r]*[ ().-]*\\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*[ \\t\\n\\r]*$"
        )]
        recipient: String,
        /// 1–1000 characters after trimming.
        #[schema(example = "Your order has shipped.", min_length = 1, max_length = 1000)]
        message: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_bodies() {
        let ok = NewNotification::parse(&json!({"type": "Sms", "recipient": "+44 20 7946 0958", "message": " hi "}))
            .unwrap();
        assert_eq!((ok.recipient.as_str(), ok.message.as_str()), ("+442079460958", "hi"));
        let problem =
            NewNotification::parse(&json!({"type": "Email", "recipient": "+442079460958", "message": ""})).unwrap_err();
        assert_eq!(problem.errors.unwrap().keys().collect::<Vec<_>>(), ["message", "recipient"]);
        let problem = NewNotification::parse(&json!({"type": "Fax", "recipient": "x", "message": "m"})).unwrap_err();
        assert_eq!(problem.errors.unwrap().keys().collect::<Vec<_>>(), ["type"]);
        assert!(
            NewNotification::parse(&json!({"type": "Email", "recipient": "a@b.co", "message": "x".repeat(1001)}))
                .is_err()
        );
    }
}
