//! Prometheus metrics: the edge's HTTP metrics plus whatever a service registers.
//!
//! Requests are labelled by method, route *template* and status, never by raw path, so a scan
//! of random URLs cannot create unbounded series. Supervisor restarts are read from the
//! [`Liveness`](wharf_actors::Liveness) record at scrape time, with a zero series for every
//! actor of the edge's supervisor.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use warp::Filter;
use warp::reply::Response;
use wharf_actors::SupervisorHandle;

use crate::exposition::{Format, to_prometheus_text};
use crate::request::route;
use crate::server::EdgeState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChildLabels {
    child: String,
}

/// The edge's own metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
    restarts: Family<ChildLabels, Counter>,
    up: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: covers cached reads and a products call that waits out its timeouts.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            restarts: Family::default(),
            up: Gauge::default(),
        };
        registry.register("http_requests", "HTTP requests served", metrics.requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", metrics.latency.clone());
        registry.register("http_requests_in_flight", "HTTP requests being served", metrics.in_flight.clone());
        registry.register("actor_restarts", "Supervised actor restarts", metrics.restarts.clone());
        registry.register("actor_system_up", "1 while supervision has not escalated", metrics.up.clone());
        metrics
    }

    pub(crate) fn started(&self) {
        self.in_flight.inc();
    }

    pub(crate) fn finished(&self, method: &Method, route: &'static str, status: StatusCode, elapsed: Duration) {
        self.in_flight.dec();
        let labels = RequestLabels { method: method_label(method), route, status: status.as_u16() };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Metrics: Prometheus text 0.0.4, or OpenMetrics 1.0 when `Accept` asks for it.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4, or OpenMetrics 1.0.0 when `Accept` lists application/openmetrics-text",
        content((String = "text/plain"), (String = "application/openmetrics-text")))))]
pub(crate) async fn metrics(
    state: Arc<EdgeState>,
    accept: Option<HeaderValue>,
) -> Result<Response, std::convert::Infallible> {
    let format = Format::negotiate(accept.as_ref());
    let metrics = &state.metrics;
    // Every supervised actor has its series from the start, at 0: the first restart is then an
    // increase a `rate()` or `increase()` can see, not the series appearing.
    for child in state.supervisor.iter().flat_map(SupervisorHandle::children) {
        drop(metrics.restarts.get_or_create(&ChildLabels { child }));
    }
    for (child, count) in state.liveness.restarts() {
        let counter = metrics.restarts.get_or_create(&ChildLabels { child });
        // The supervisor's count only grows; bring the exported counter level with it.
        let seen = counter.get();
        if count > seen {
            counter.inc_by(count - seen);
        }
    }
    metrics.up.set(i64::from(state.liveness.is_alive()));
    let mut body = String::with_capacity(8 * 1024);
    let response = match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => {
            let body = match format {
                Format::OpenMetrics => body,
                Format::PrometheusText => to_prometheus_text(&body),
            };
            let mut response = Response::new(body.into());
            response.headers_mut().insert(header::CONTENT_TYPE, format.content_type());
            response
        }
        Err(_) => crate::problem::Problem::internal().into_response(),
    };
    Ok(response)
}

pub(crate) fn routes(state: Arc<EdgeState>) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(route("/metrics"))
        .and(warp::any().map(move || state.clone()))
        .and(warp::header::headers_cloned().map(|headers: http::HeaderMap| headers.get(header::ACCEPT).cloned()))
        .and_then(metrics)
}
