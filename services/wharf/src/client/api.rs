//! The public `/api/*` of the three services, one typed call per thing the CLI does with it.
//!
//! Every call states the one status that means success (201 for a creation, 204 for a delete) and
//! parses the document it expects; anything else is an [`ApiError`]. A correlation id, when set,
//! goes with every call so that one run of a command can be followed through the services' logs.

use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, StatusCode, Url};

use super::{
    ApiError, CORRELATION_ID, Client, Expect, Health, IDEMPOTENCY_KEY, NewOrder, NewProduct, Notification,
    NotificationQuery, Order, Product, Routes,
};
use crate::targets::{Service, Targets};

/// The public API of one deployment.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    routes: Routes,
    /// `X-Correlation-ID` of every call but an order's, which is named by its idempotency key.
    correlation_id: Option<HeaderValue>,
}

impl Api {
    /// The API of the services at `targets`, called through `client`.
    pub fn new(client: Client, targets: Targets) -> Result<Self, ApiError> {
        Ok(Self { client, routes: Routes::new(targets)?, correlation_id: None })
    }

    /// The same API, naming every call with `id` in the services' logs.
    pub fn correlated(mut self, id: HeaderValue) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Where each endpoint is.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The client the calls go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.client.http().request(method, url);
        match &self.correlation_id {
            Some(id) => request.header(CORRELATION_ID, id.clone()),
            None => request,
        }
    }

    /// `GET /health` of `service` (200).
    pub async fn health(&self, service: Service) -> Result<Health, ApiError> {
        let request = self.request(Method::GET, self.routes.health(service)?);
        self.client.send(request, Expect::Status(StatusCode::OK)).await?.json()
    }

    /// `GET /api/<service>?limit=1` (200): through a path-routing ingress, where `/health` is not
    /// routed, this proves the route, the service and its database at once.
    pub async fn probe(&self, service: Service) -> Result<(), ApiError> {
        let request = self.request(Method::GET, self.routes.page(service, 1)?);
        self.client.send(request, Expect::Status(StatusCode::OK)).await.map(drop)
    }

    /// `POST /api/products` (201).
    pub async fn create_product(&self, product: &NewProduct<'_>) -> Result<Product, ApiError> {
        let request = self.request(Method::POST, self.routes.collection(Service::Products)?).json(product);
        self.client.send(request, Expect::Status(StatusCode::CREATED)).await?.json()
    }

    /// `GET /api/products/{id}` (200).
    pub async fn product(&self, id: i64) -> Result<Product, ApiError> {
        let request = self.request(Method::GET, self.routes.product(id)?);
        self.client.send(request, Expect::Status(StatusCode::OK)).await?.json()
    }

    /// `DELETE /api/products/{id}` (204).
    pub async fn delete_product(&self, id: i64) -> Result<(), ApiError> {
        let request = self.request(Method::DELETE, self.routes.product(id)?);
        self.client.send(request, Expect::Status(StatusCode::NO_CONTENT)).await.map(drop)
    }

    /// `POST /api/orders` (201) under idempotency key `key`, which is also the order's
    /// correlation id: one value follows the order from the CLI to its email.
    pub async fn place_order(&self, order: &NewOrder<'_>, key: &str) -> Result<Order, ApiError> {
        let request = self
            .client
            .http()
            .post(self.routes.collection(Service::Orders)?)
            .header(IDEMPOTENCY_KEY, key)
            .header(CORRELATION_ID, key)
            .json(order);
        self.client.send(request, Expect::Status(StatusCode::CREATED)).await?.json()
    }

    /// `GET /api/orders/{id}` (200).
    pub async fn order(&self, id: i64) -> Result<Order, ApiError> {
        let request = self.request(Method::GET, self.routes.order(id)?);
        self.client.send(request, Expect::Status(StatusCode::OK)).await?.json()
    }

    /// `GET /api/notifications?recipient=…` (200): a page of one recipient's notifications, in
    /// id order.
    pub async fn notifications(&self, query: &NotificationQuery<'_>) -> Result<Vec<Notification>, ApiError> {
        let url = self.routes.notifications_of(query.recipient, query.limit, query.offset)?;
        let request = self.request(Method::GET, url);
        self.client.send(request, Expect::Status(StatusCode::OK)).await?.json()
    }
}
