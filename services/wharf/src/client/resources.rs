//! The documents of the public API as the CLI writes and reads them.
//!
//! A client's view, not the services' types: only the fields a command uses are read, and unknown
//! ones are ignored, so a service may add fields without breaking an older `wharf`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The body of `POST /api/products`.
#[derive(Debug, Clone, Serialize)]
pub struct NewProduct<'a> {
    name: String,
    price: f64,
    stock: i64,
    description: &'a str,
}

impl<'a> NewProduct<'a> {
    /// A product of this name, price and stock; the description says which command made it, for
    /// whoever finds it later.
    pub fn new(name: String, price: f64, stock: i64, description: &'a str) -> Self {
        Self { name, price, stock, description }
    }
}

/// A product as products answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    /// Assigned by products; what orders refer to.
    pub id: i64,
}

/// The body of `POST /api/orders`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder<'a> {
    /// The product ordered.
    pub product_id: i64,
    /// Units of it.
    pub quantity: u32,
    /// Who is emailed the confirmation.
    pub customer_email: &'a str,
}

/// An order as orders answers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Assigned by orders; the notification names it as `orderId`.
    pub id: i64,
    /// `Pending`, `Confirmed`, …, as orders spells it.
    pub status: String,
    /// Where the order→notification delay starts.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A notification as notifications answers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Assigned by notifications.
    pub id: i64,
    /// `Pending` until the email is `Sent` or has `Failed` for good.
    pub status: String,
    /// The order it confirms; absent for notifications not about an order.
    #[serde(default)]
    pub order_id: Option<i64>,
    /// When the email went out; where the order→notification delay ends.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

impl Notification {
    /// Whether its email went out.
    pub fn is_sent(&self) -> bool {
        self.status == "Sent"
    }

    /// Whether its status is final: `Sent` or `Failed`, never to change again.
    pub fn is_settled(&self) -> bool {
        self.status != "Pending"
    }
}

/// Which of a recipient's notifications to list: the page at `offset` of at most `limit`
/// (the service's defaults when unset).
#[derive(Debug, Clone)]
pub struct NotificationQuery<'a> {
    /// The exact recipient address.
    pub recipient: &'a str,
    /// Page size, 1 to 1000.
    pub limit: Option<usize>,
    /// Notifications to skip, in id order.
    pub offset: Option<usize>,
}

impl<'a> NotificationQuery<'a> {
    /// The first page of `recipient`'s notifications, at the service's default size.
    pub fn of(recipient: &'a str) -> Self {
        Self { recipient, limit: None, offset: None }
    }
}

/// A service's `/health` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    /// `UP`, or what is wrong.
    #[serde(default)]
    pub status: Option<String>,
    /// Which service answered: shows a misrouted URL at once.
    #[serde(default)]
    pub service: Option<String>,
}
