//! `/api/orders`: the order API.
//!
//! Placing an order: parse the body → honour `Idempotency-Key` (a replay answers before products
//! is even asked) → look the product up through the ProductGateway (live, or its fallback cache
//! while products is down) → check stock → write order + OrderPlaced outbox row in one
//! transaction. Stock is checked, not reserved: two orders can both pass the check for the last
//! unit (reservation belongs to a later saga).

use std::convert::Infallible;
use std::time::Duration;

use serde_json::Value;
use utoipa::OpenApi;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use wharf_edge::reply::{answer, json, path_id};
use wharf_edge::{FieldErrors, Page, Problem, correlation_id, json_body, route};

use crate::domain::{NewOrder, Order, OrderInput, OrderStatus, StatusInput, parse_status_change};
use crate::order_store::Orders;
use crate::product_gateway::{Lookup, ProductGateway, Source};
use crate::store::{Created, IdempotencyKey};

/// The orders API document (the edge adds its shared endpoints).
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "wharf orders", description = "Orders; each one publishes OrderPlaced through a transactional outbox."),
    paths(list, get, create, change_status),
    components(schemas(Order, OrderInput, OrderStatus, StatusInput)),
    tags((name = "orders", description = "Orders"))
)]
pub struct ApiDoc;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct OrdersApi {
    /// The order store pool.
    pub orders: Orders,
    /// The only way to products.
    pub products: ProductGateway,
}

/// `Idempotency-Key`: 1–255 printable ASCII characters.
fn parse_idempotency_key(raw: Option<HeaderValue>) -> Result<Option<String>, Problem> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
            Ok(Some(key.to_owned()))
        }
        _ => {
            let mut errors = FieldErrors::new();
            errors.add("Idempotency-Key", "must be 1 to 255 printable ASCII characters");
            Err(Problem::validation(errors))
        }
    }
}

fn created(order: &Order, replayed: bool, fallback_age: Option<Duration>) -> Response {
    let mut response = json(StatusCode::CREATED, order);
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/orders/{}", order.id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(age) = fallback_age {
        // The order was validated against the last-known product, not a live answer.
        if let Ok(value) = HeaderValue::from_str(&format!("fallback-cache; age={}", age.as_secs())) {
            headers.insert("x-product-source", value);
        }
    }
    response
}

fn unprocessable(slug: &str, title: &str, detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, slug, title, detail)
}

/// List orders, in ascending id order.
#[utoipa::path(get, path = "/api/orders", security(("bearer" = [])), tag = "orders",
    params(Page),
    responses((status = 200, body = [Order]), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list(query: Vec<(String, String)>, api: OrdersApi) -> Result<Response, Infallible> {
    answer(
        async {
            let page = Page::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            Ok(json(StatusCode::OK, &api.orders.list(page).await?))
        }
        .await,
    )
}

/// One order.
#[utoipa::path(get, path = "/api/orders/{id}", security(("bearer" = [])), tag = "orders",
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, body = Order), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get(id: String, api: OrdersApi) -> Result<Response, Infallible> {
    answer(async { Ok(json(StatusCode::OK, &api.orders.get(path_id(&id)?).await?)) }.await)
}

/// Place an order; OrderPlaced is published through the outbox.
#[utoipa::path(post, path = "/api/orders", security(("bearer" = [])), tag = "orders", request_body = OrderInput,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]([ -~]{0,253}[!-~])?$",
             description = "1–255 printable ASCII characters. Same key and body: the original order, no second event; same key, other body: 422")),
    responses((status = 201, body = Order, headers(("Location" = String), ("X-Product-Source" = String, description = "present when validated against the fallback cache"))),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "unknown product, not enough stock, or an idempotency key reused with another body"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "products unreachable and the product is not cached; see Retry-After")))]
async fn create(key: Option<HeaderValue>, api: OrdersApi, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let order = NewOrder::parse(&body)?;
            let key = parse_idempotency_key(key)?.map(|key| IdempotencyKey::new(key, &order));
            if let Some(key) = &key {
                match api.orders.find_idempotent(key).await? {
                    Some(Created::Replayed(original)) => return Ok(created(&original, true, None)),
                    Some(Created::KeyConflict) => return Err(key_conflict()),
                    Some(Created::New(_)) | None => {}
                }
            }

            let correlation = correlation_id();
            let fallback_age = match api.products.lookup(order.product_id.get(), &correlation).await {
                Ok(Lookup::Found { product, source }) => {
                    if i64::from(product.stock) < i64::from(order.quantity.get()) {
                        return Err(unprocessable(
                            "insufficient-stock",
                            "Not enough stock",
                            format!(
                                "Product {} has {} in stock; {} were ordered.",
                                product.id,
                                product.stock,
                                order.quantity.get()
                            ),
                        ));
                    }
                    match source {
                        Source::Live => None,
                        Source::Fallback { age } => {
                            tracing::warn!(
                                product_id = product.id,
                                age_secs = age.as_secs(),
                                "order validated against the fallback cache"
                            );
                            Some(age)
                        }
                    }
                }
                Ok(Lookup::NotFound) => {
                    return Err(unprocessable(
                        "unknown-product",
                        "Unknown product",
                        format!("There is no product with id {}.", order.product_id.get()),
                    ));
                }
                // products unreachable and the product not cached (503 + Retry-After), or
                // products refusing the lookup itself (502): worded once, in `GatewayError`.
                Err(unanswered) => return Err(unanswered.into()),
            };

            let (traceparent, tracestate) =
                (wharf_edge::trace::current_traceparent(), wharf_edge::trace::current_tracestate());
            match api.orders.create(order, correlation, traceparent, tracestate, key).await? {
                Created::New(order) => Ok(created(&order, false, fallback_age)),
                Created::Replayed(original) => Ok(created(&original, true, None)),
                Created::KeyConflict => Err(key_conflict()),
            }
        }
        .await,
    )
}

fn key_conflict() -> Problem {
    unprocessable(
        "idempotency-key-reused",
        "Idempotency key reused",
        "This Idempotency-Key was already used with a different request body.".to_owned(),
    )
}

/// Move an order along its lifecycle.
#[utoipa::path(put, path = "/api/orders/{id}/status", security(("bearer" = ["admin"])), tag = "orders", request_body = StatusInput,
    params(("id" = i64, Path, description = "The order's id")),
    responses((status = 200, body = Order), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the lifecycle does not allow this change")))]
async fn change_status(id: String, api: OrdersApi, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let id = path_id(&id)?;
            let status = parse_status_change(&body)?;
            Ok(json(StatusCode::OK, &api.orders.change_status(id, status).await?))
        }
        .await,
    )
}

/// Every `/api/orders` route (path before method: a known path with a wrong method is 405).
pub fn routes(api: OrdersApi, body_limit: u64) -> BoxedFilter<(Response,)> {
    let api = warp::any().map(move || api.clone());
    let collection = warp::path!("api" / "orders");
    let item = warp::path!("api" / "orders" / String);
    let status = warp::path!("api" / "orders" / String / "status");

    let list = collection
        .and(warp::get())
        .and(route("/api/orders"))
        .and(warp::query::<Vec<(String, String)>>())
        .and(api.clone())
        .and_then(list);
    let create = collection
        .and(warp::post())
        .and(route("/api/orders"))
        .and(warp::header::optional::<HeaderValue>("idempotency-key"))
        .and(api.clone())
        .and(json_body(body_limit))
        .and_then(create);
    let get = item.and(warp::get()).and(route("/api/orders/{id}")).and(api.clone()).and_then(get);
    let change_status = status
        .and(warp::put())
        .and(route("/api/orders/{id}/status"))
        .and(api)
        .and(json_body(body_limit))
        .and_then(change_status);

    list.or(create).unify().or(get).unify().or(change_status).unify().boxed()
}
