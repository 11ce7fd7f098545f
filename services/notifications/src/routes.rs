//! `/api/notifications`: direct sends and reading what was sent.

use std::convert::Infallible;

use serde_json::Value;
use utoipa::OpenApi;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use wharf_actors::PoolHandle;
use wharf_edge::reply::{answer, json, path_id};
use wharf_edge::{FieldErrors, Page, Problem, correlation_id, json_body, route};
use wharf_runtime::StoreClient;

use crate::domain::{Channel, DeliveryStatus, NewNotification, Notification, SendInput};
use crate::sender::{SendJob, Sender};
use crate::store::{Filter as ListFilter, NotificationStore};

/// The notifications API document (the edge adds its shared endpoints).
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "wharf notifications", description = "Notifications: order confirmations from OrderPlaced, and direct sends."),
    paths(list, get, send),
    components(schemas(Notification, SendInput, Channel, DeliveryStatus)),
    tags((name = "notifications", description = "Notifications"))
)]
pub struct ApiDoc;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct NotificationsApi {
    /// The notification store, through its worker pool (`notifications/store`).
    pub store: StoreClient<NotificationStore>,
    pub senders: PoolHandle<Sender>,
    /// Attempts for a direct send.
    pub attempts: u32,
}

/// List notifications (filters: `recipient`, `status`), in ascending id order.
#[utoipa::path(get, path = "/api/notifications", security(("bearer" = ["admin"])), tag = "notifications",
    params(("recipient" = Option<String>, Query, description = "exact recipient (emails: domain lower-cased; numbers: E.164)"),
           ("status" = Option<DeliveryStatus>, Query, description = "Pending, Sent or Failed"),
           Page),
    responses((status = 200, body = [Notification]), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list(query: Vec<(String, String)>, api: NotificationsApi) -> Result<Response, Infallible> {
    answer(
        async {
            let page = Page::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut errors = FieldErrors::new();
            let mut filter = ListFilter::default();
            for (key, value) in &query {
                match key.as_str() {
                    // The same normalisation as on the way in, so `Ada@Example.COM` finds `Ada@example.com`.
                    "recipient" => {
                        filter.recipient = Some(
                            crate::domain::Recipient::parse(Channel::Email, value)
                                .or_else(|_| crate::domain::Recipient::parse(Channel::Sms, value))
                                .map(|r| r.as_str().to_owned())
                                .unwrap_or_else(|_| value.clone()),
                        )
                    }
                    "status" => match value.parse::<DeliveryStatus>() {
                        Ok(status) => filter.status = Some(status),
                        Err(message) => errors.add("status", message),
                    },
                    _ => {}
                }
            }
            let page = match (page, errors.is_empty()) {
                (Ok(page), true) => page,
                (Err(problem), _) => return Err(problem),
                (Ok(_), false) => return Err(Problem::validation(errors)),
            };
            let found = api.store.read(move |s| {
                let filter = filter.clone();
                async move { s.list(&filter, page).await }
            });
            Ok(json(StatusCode::OK, &found.await?))
        }
        .await,
    )
}

/// One notification.
#[utoipa::path(get, path = "/api/notifications/{id}", security(("bearer" = ["admin"])), tag = "notifications",
    params(("id" = i64, Path, description = "The notification's id")),
    responses((status = 200, body = Notification), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get(id: String, api: NotificationsApi) -> Result<Response, Infallible> {
    answer(
        async {
            let id = path_id(&id)?;
            match api.store.read(move |s| async move { s.get(id).await }).await? {
                Some(stored) => Ok(json(StatusCode::OK, &stored.notification)),
                None => Err(Problem::not_found(format!("There is no notification with id {id}."))),
            }
        }
        .await,
    )
}

/// Send a notification: accepted as Pending, delivered by the sender pool.
#[utoipa::path(post, path = "/api/notifications/send", security(("bearer" = ["admin"])), tag = "notifications", request_body = SendInput,
    responses((status = 202, body = Notification, headers(("Location" = String))),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "the senders are overloaded; see Retry-After")))]
async fn send(api: NotificationsApi, body: Value) -> Result<Response, Infallible> {
    answer(
        async {
            let new = NewNotification::parse(&body)?;
            let correlation = correlation_id();
            let correlation_for_store = correlation.clone();
            let stored = api.store.write(move |s| async move { s.create(&new, &correlation_for_store).await }).await?;
            let id = stored.notification.id;
            let job = SendJob {
                notification: stored.notification.clone(),
                correlation_id: correlation,
                attempts: api.attempts,
                final_on_failure: true,
                reply: None,
                parent: tracing::Span::current(),
            };
            if let Err(err) = api.senders.submit(job) {
                // Not accepted after all: remove the row rather than leave a send nobody will make.
                let _ = api.store.write(move |s| async move { s.delete(id).await }).await;
                return Err(Problem::unavailable(format!("The senders cannot take more work right now: {err}."), 2));
            }
            let mut response = json(StatusCode::ACCEPTED, &stored.notification);
            if let Ok(location) = HeaderValue::from_str(&format!("/api/notifications/{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        .await,
    )
}

/// Every `/api/notifications` route (path before method: a known path with a wrong method is 405).
pub fn routes(api: NotificationsApi, body_limit: u64) -> BoxedFilter<(Response,)> {
    let api = warp::any().map(move || api.clone());
    let list = warp::path!("api" / "notifications")
        .and(warp::get())
        .and(route("/api/notifications"))
        .and(warp::query::<Vec<(String, String)>>())
        .and(api.clone())
        .and_then(list);
    let send = warp::path!("api" / "notifications" / "send")
        .and(warp::post())
        .and(route("/api/notifications/send"))
        .and(api.clone())
        .and(json_body(body_limit))
        .and_then(send);
    let get = warp::path!("api" / "notifications" / String)
        .and(warp::get())
        .and(route("/api/notifications/{id}"))
        .and(api)
        .and_then(get);
    // `send` before `get`: `/api/notifications/send` would otherwise be read as an id.
    list.or(send).unify().or(get).unify().boxed()
}
