//! The events wharf services exchange over the bus — one Rust type per event and major version,
//! defined once here and used by both the producer and the consumers.
//!
//! The JSON shapes are docs/contract.md's: camelCase fields, the payload under the envelope's `data`.
//! Consumers ignore fields they do not know, so adding a field is a compatible (minor) change; a
//! breaking change is a new type with `VERSION` bumped, kept beside the old one while both travel.

mod order_placed;

pub use order_placed::OrderPlaced;
