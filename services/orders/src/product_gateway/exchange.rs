//! One attempt on the wire: the request to products, the reading of its answer, and what the
//! attempt learned ([`Answer`]) or why it learned nothing ([`Failure`]).

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use wharf_edge::request::CORRELATION_HEADER;
use wharf_runtime::error_chain;

use super::answer::ProductSnapshot;

/// What one attempt learned from products.
#[derive(Debug)]
pub(super) enum Answer {
    /// 200 with the product.
    Product(ProductSnapshot),
    Missing,
}

/// Why one attempt got no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// No connection could be made (refused, unreachable, name not resolved).
    Connect(String),
    /// No complete answer within the per-attempt timeout.
    Timeout,
    /// The connection failed mid-exchange.
    Transport(String),
    /// 5xx, 408 or 429, with products' `Retry-After` if it sent one.
    Status { status: u16, retry_after: Option<Duration> },
    /// An answer that is not what the contract promises (a 200 that is not the product asked
    /// for, or an unexpected status): products is broken; retrying would not help.
    Malformed(String),
    /// A 4xx other than 404, 408 and 429: products refused our request.
    Refused { status: u16, detail: String },
}

impl Failure {
    /// Whether this attempt counts against products in the circuit breaker. A refusal is
    /// products answering: it says nothing about products' health.
    pub(super) fn counts_against_products(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }

    /// Whether another attempt might succeed, and under which `products_retries` reason.
    pub(super) fn retry_reason(&self) -> Option<&'static str> {
        match self {
            Self::Connect(_) => Some("connect"),
            Self::Timeout => Some("timeout"),
            Self::Transport(_) => Some("transport"),
            Self::Status { status: 429, .. } => Some("throttled"),
            Self::Status { status: 408, .. } => Some("request_timeout"),
            Self::Status { .. } => Some("server_error"),
            Self::Malformed(_) | Self::Refused { .. } => None,
        }
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(error_chain(&err))
        } else {
            Self::Transport(error_chain(&err))
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(err) => write!(f, "cannot connect to products ({err})"),
            Self::Timeout => write!(f, "products did not answer in time"),
            Self::Transport(err) => write!(f, "the connection to products failed ({err})"),
            Self::Status { status, .. } => write!(f, "products answered HTTP {status}"),
            Self::Malformed(why) => write!(f, "products sent an unusable answer ({why})"),
            Self::Refused { status, .. } => write!(f, "products refused the request with HTTP {status}"),
        }
    }
}

/// The largest body read from products; a product is a few hundred bytes.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The headers that carry a lookup's context to products: the correlation id, and the W3C trace
/// context (`traceparent`, `tracestate`) of the lookup's span when traces are exported.
pub(super) fn context_headers(correlation_id: &str, span: &tracing::Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    wharf_edge::trace::inject(span, &mut headers);
    if !correlation_id.is_empty() {
        match HeaderValue::from_str(correlation_id) {
            Ok(value) => {
                headers.insert(CORRELATION_HEADER, value);
            }
            // The edge only hands out header-safe ids; anything else is dropped, not a failure.
            Err(_) => tracing::debug!("correlation id is not a valid header value; not sent to products"),
        }
    }
    headers
}

/// One request to products and the reading of its answer (the caller bounds it in time).
pub(super) async fn exchange(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    id: i64,
) -> Result<Answer, Failure> {
    let mut response = client.get(url).headers(headers).send().await.map_err(Failure::from_reqwest)?;
    let status = response.status().as_u16();
    match status {
        200 => parse_product(&read_body(&mut response).await?, id).map(Answer::Product),
        404 => Ok(Answer::Missing),
        408 | 429 | 500..=599 => Err(Failure::Status { status, retry_after: retry_after_header(response.headers()) }),
        400..=499 => {
            // The detail is only for the log: a body we cannot read does not change the verdict.
            let detail = read_body(&mut response).await.map(|body| problem_detail(&body)).unwrap_or_default();
            Err(Failure::Refused { status, detail })
        }
        other => Err(Failure::Malformed(format!("unexpected HTTP {other}"))),
    }
}

async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::Malformed(format!("a body over {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The fields of products' product JSON that orders uses; others are ignored.
#[derive(Deserialize)]
struct WireProduct {
    id: i64,
    name: String,
    price: f64,
    stock: i64,
}

/// A 200 body as a snapshot of product `id`.
fn parse_product(body: &[u8], id: i64) -> Result<ProductSnapshot, Failure> {
    let wire: WireProduct =
        serde_json::from_slice(body).map_err(|err| Failure::Malformed(format!("not a product: {err}")))?;
    if wire.id != id {
        return Err(Failure::Malformed(format!("asked for product {id}, got product {}", wire.id)));
    }
    let price_cents = price_cents(wire.price)
        .ok_or_else(|| Failure::Malformed(format!("price {} is not a non-negative amount of cents", wire.price)))?;
    let stock = i32::try_from(wire.stock)
        .ok()
        .filter(|units| *units >= 0)
        .ok_or_else(|| Failure::Malformed(format!("stock {} is out of range", wire.stock)))?;
    Ok(ProductSnapshot { id, name: wire.name, price_cents, stock })
}

/// A price (a JSON number with at most two decimals, as products sends it) in exact cents.
///
/// Multiplying by 100 would round (`19.99 * 100.0` is `1998.9999999999998`); instead this reads
/// the number's shortest decimal form, which is what products wrote (`cents / 100`, correctly
/// rounded, prints as exactly the two-decimal value) — the same reasoning as products' `Price`.
fn price_cents(price: f64) -> Option<i64> {
    if !price.is_finite() || price < 0.0 {
        return None;
    }
    // `Display` for f64 prints the shortest digits that round-trip, never in exponent form.
    let text = price.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.len() > 2 {
        return None;
    }
    let whole: i64 = whole.trim_start_matches('-').parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

/// `Retry-After` in delay-seconds. The HTTP-date form is not used by wharf services and is
/// ignored (the backoff applies).
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `detail` of a problem+json body, or nothing.
fn problem_detail(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|problem| problem.get("detail")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn prices_convert_to_exact_cents() {
        for (price, cents) in [
            (19.99, 1999),
            (0.1, 10),
            (0.0, 0),
            (5.0, 500),
            (0.07, 7),
            (1_234_567.89, 123_456_789),
            (999_999_999.99, 99_999_999_999),
        ] {
            assert_eq!(price_cents(price), Some(cents), "{price}");
        }
        for bad in [1.005, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(price_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_product_body_is_parsed_and_checked() {
        let body = br#"{"id":7,"name":"Lamp","price":19.99,"description":"","stock":3,"createdAt":"x"}"#;
        let product = parse_product(body, 7).unwrap();
        assert_eq!(product, ProductSnapshot { id: 7, name: "Lamp".into(), price_cents: 1999, stock: 3 });
        assert!(matches!(parse_product(body, 8), Err(Failure::Malformed(_))));
        assert!(matches!(parse_product(br#"{"id":7,"name":"x","price":1,"stock":-1}"#, 7), Err(Failure::Malformed(_))));
        assert!(matches!(parse_product(b"<html>", 7), Err(Failure::Malformed(_))));
    }

    #[test]
    fn retry_after_takes_delay_seconds_only() {
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            retry_after_header(&headers)
        };
        assert_eq!(header("3"), Some(Duration::from_secs(3)));
        assert_eq!(header(" 0 "), Some(Duration::ZERO));
        assert_eq!(header("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(header("-1"), None);
        assert_eq!(retry_after_header(&HeaderMap::new()), None);
    }

    #[test]
    fn failures_decide_retries_and_breaker_accounting() {
        assert_eq!(Failure::Timeout.retry_reason(), Some("timeout"));
        assert_eq!(Failure::Status { status: 503, retry_after: None }.retry_reason(), Some("server_error"));
        assert_eq!(Failure::Status { status: 429, retry_after: None }.retry_reason(), Some("throttled"));
        assert_eq!(Failure::Malformed("x".into()).retry_reason(), None);
        let refused = Failure::Refused { status: 400, detail: String::new() };
        assert_eq!(refused.retry_reason(), None);
        assert!(!refused.counts_against_products());
        assert!(Failure::Malformed("x".into()).counts_against_products());
    }
}
