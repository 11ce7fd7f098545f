//! AMQP header tables: reading the bus's metadata out of them and writing it in.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::message::{Metadata, headers};

/// A header's value as text, whatever AMQP type a producer used for it.
pub(crate) fn text(table: &FieldTable, key: &str) -> Option<String> {
    match table.inner().get(key)? {
        AMQPValue::LongString(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        other => integer_value(other).map(|n| n.to_string()),
    }
}

/// A header's value as an integer (numbers of any width, or digits in a string).
pub(crate) fn integer(table: &FieldTable, key: &str) -> Option<i64> {
    match table.inner().get(key)? {
        AMQPValue::LongString(value) => String::from_utf8_lossy(value.as_bytes()).trim().parse().ok(),
        AMQPValue::ShortString(value) => value.as_str().trim().parse().ok(),
        other => integer_value(other),
    }
}

fn integer_value(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok()?,
        _ => return None,
    })
}

/// The reason the broker recorded when *it* dead-lettered a message (`x-first-death-reason`,
/// e.g. `delivery_limit`), for dead letters the bus did not move itself.
pub(crate) fn broker_death_reason(table: &FieldTable) -> Option<String> {
    text(table, "x-first-death-reason").map(|reason| format!("dead-lettered by the broker: {reason}"))
}

/// Inserts a text header.
pub(crate) fn put_text(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(ShortString::from(key), AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())));
}

/// Inserts an integer header.
pub(crate) fn put_integer(table: &mut FieldTable, key: &str, value: i64) {
    table.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
}

/// Reads the bus metadata from a message's headers.
pub(crate) fn metadata(properties: &BasicProperties) -> Metadata {
    match properties.headers() {
        Some(table) => Metadata::from_lookup(|key| text(table, key)),
        None => Metadata::default(),
    }
}

/// A copy of `table` for republishing: without the broker's own `x-…` headers (delivery count,
/// death history — they describe the old copy) and without the bus headers listed in `drop`.
pub(crate) fn republishable(table: Option<&FieldTable>, drop: &[&str]) -> FieldTable {
    let mut copy = FieldTable::default();
    if let Some(table) = table {
        for (key, value) in table.inner() {
            if !key.as_str().starts_with("x-") && !drop.contains(&key.as_str()) {
                copy.insert(key.clone(), value.clone());
            }
        }
    }
    copy
}

/// The bus headers a replayed dead letter must not carry.
pub(crate) const DEAD_LETTER_HEADERS: [&str; 4] =
    [headers::ATTEMPTS, headers::DEAD_LETTER_REASON, headers::DEAD_LETTER_ATTEMPTS, headers::DEAD_LETTERED_AT];

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_integers_of_any_amqp_type() {
        let mut table = FieldTable::default();
        put_text(&mut table, "event-type", "OrderPlaced");
        put_text(&mut table, "event-version", "1");
        table.insert("x-delivery-count".into(), AMQPValue::LongInt(3));
        table.insert("short".into(), AMQPValue::ShortString("hi".into()));
        assert_eq!(text(&table, "event-type").as_deref(), Some("OrderPlaced"));
        assert_eq!(text(&table, "short").as_deref(), Some("hi"));
        assert_eq!(integer(&table, "event-version"), Some(1));
        assert_eq!(integer(&table, "x-delivery-count"), Some(3));
        assert_eq!(text(&table, "x-delivery-count").as_deref(), Some("3"));
        assert_eq!(integer(&table, "missing"), None);
    }

    #[test]
    fn republishing_drops_broker_and_listed_headers() {
        let mut table = FieldTable::default();
        put_text(&mut table, "event-type", "OrderPlaced");
        put_integer(&mut table, headers::ATTEMPTS, 2);
        table.insert("x-delivery-count".into(), AMQPValue::LongInt(1));
        table.insert("x-death".into(), AMQPValue::Void);
        let copy = republishable(Some(&table), &[headers::ATTEMPTS]);
        let keys: Vec<&str> = copy.inner().keys().map(ShortString::as_str).collect();
        assert_eq!(keys, ["event-type"]);
    }
}
