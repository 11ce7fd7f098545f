//! The edge server: binds, serves a service's routes with the shared behaviour around them, and
//! shuts down gracefully.
//!
//! Routing stays in warp filters; the connection loop is hyper's, driven here rather than by
//! `warp::serve` so the edge can (a) wrap every request — correlation id, security headers,
//! metrics, the access log, chaos faults when a drill is armed — including warp's own
//! rejections, and (b) bound the drain: after the shutdown signal it stops accepting, lets
//! in-flight requests finish for up to the grace period, then cuts what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;
use utoipa::openapi::OpenApi as OpenApiDoc;
use warp::reply::Response;
use warp::{Filter, Rejection};
use wharf_actors::{Liveness, SupervisorHandle};

use crate::health::Check;
use crate::metrics::HttpMetrics;
use crate::request::{CORRELATION_HEADER, RequestScope, SCOPE};
use crate::{chaos, docs, health, metrics, problem, security};

/// How a service names itself.
#[derive(Debug, Clone, Copy)]
pub struct ServiceName {
    /// In health bodies: `ProductService`.
    pub display: &'static str,
    /// In logs, metrics and actor names: `products`.
    pub short: &'static str,
}

/// Where and how the edge listens.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub host: IpAddr,
    /// Port to bind; 0 picks a free port.
    pub port: u16,
    /// Largest request body, in bytes.
    pub body_limit: u64,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    pub chaos_enabled: bool,
    /// The variable that sets `port`, named in a bind error (`PORT`; `wharf up` has one per service).
    pub port_variable: &'static str,
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The port is taken or the address is not ours.
    #[error("cannot listen on {addr}: {source} (set {port_variable} to another port, or HOST to another address)")]
    Bind { addr: SocketAddr, port_variable: &'static str, source: std::io::Error },
}

/// What the shared routes and the request wrapper read.
pub(crate) struct EdgeState {
    pub(crate) service: ServiceName,
    pub(crate) metrics: HttpMetrics,
    pub(crate) registry: Registry,
    pub(crate) checks: Vec<Box<dyn Check>>,
    pub(crate) liveness: Liveness,
    pub(crate) supervisor: Option<SupervisorHandle>,
    /// Set when shutdown begins: readiness turns 503 so load balancers stop sending traffic.
    pub(crate) draining: AtomicBool,
    /// Faults injected by `/admin/chaos/*` (never armed when chaos is disabled).
    pub(crate) chaos: Arc<chaos::Drill>,
}

/// An edge being assembled by a service.
pub struct Edge {
    service: ServiceName,
    config: EdgeConfig,
    registry: Registry,
    metrics: HttpMetrics,
    checks: Vec<Box<dyn Check>>,
    liveness: Liveness,
    supervisor: Option<SupervisorHandle>,
    doc: OpenApiDoc,
    chaos: Arc<chaos::Drill>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("service", &self.service).field("config", &self.config).finish_non_exhaustive()
    }
}

impl Edge {
    /// An edge for `service`; `liveness` is the one its supervisor escalates into.
    pub fn new(service: ServiceName, config: EdgeConfig, liveness: Liveness) -> Self {
        let mut registry = Registry::with_prefix("wharf");
        let metrics = HttpMetrics::register(&mut registry);
        registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
        let chaos = Arc::new(chaos::Drill::new());
        if config.chaos_enabled {
            chaos.register(&mut registry);
        }
        Self {
            service,
            config,
            registry,
            metrics,
            checks: Vec::new(),
            liveness,
            supervisor: None,
            doc: OpenApiDoc::default(),
            chaos,
        }
    }

    /// The registry a service adds its own metrics to (prefixed `wharf_`).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Adds a dependency check to `/health` and `/health/ready`.
    pub fn check(mut self, check: impl Check) -> Self {
        self.checks.push(Box::new(check));
        self
    }

    /// The supervisor whose actors `/admin/chaos` may list and kill.
    pub fn supervisor(mut self, supervisor: SupervisorHandle) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// The service's OpenAPI document; the shared endpoints are merged in.
    pub fn openapi(mut self, doc: OpenApiDoc) -> Self {
        self.doc = docs::merged(doc);
        self
    }

    /// The configured body limit, for the service's body filters.
    pub fn body_limit(&self) -> u64 {
        self.config.body_limit
    }

    /// Binds and starts serving `api` plus the shared routes. Returns once listening.
    pub async fn serve<F>(self, api: F) -> Result<RunningEdge, EdgeError>
    where
        F: Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static,
    {
        let addr = SocketAddr::new(self.config.host, self.config.port);
        let bind_error = |source| EdgeError::Bind { addr, port_variable: self.config.port_variable, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let state = Arc::new(EdgeState {
            service: self.service,
            metrics: self.metrics,
            registry: self.registry,
            checks: self.checks,
            liveness: self.liveness,
            supervisor: self.supervisor,
            draining: AtomicBool::new(false),
            chaos: self.chaos,
        });
        let operational = health::routes(state.clone()).or(docs::routes(self.doc)).unify().boxed();
        // An ALB cannot rewrite paths, so behind the ingress `/products/health` must reach
        // products as it is: the operational endpoints answer under the service's prefix too.
        let prefixed = warp::path(state.service.short).and(operational.clone());
        let shared = operational.or(prefixed).unify().or(metrics::routes(state.clone())).unify().boxed();
        let chaos = if self.config.chaos_enabled {
            chaos::routes(state.clone(), self.config.body_limit).boxed()
        } else {
            warp::any().and_then(|| async { Err::<Response, _>(warp::reject::not_found()) }).boxed()
        };
        let routes = api.or(shared).unify().or(chaos).unify().recover(problem::recover).unify();
        let service = EdgeService { routes: warp::service(routes), state: state.clone() };

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let grace = self.config.shutdown_grace;
        let task = tokio::spawn(accept_loop(listener, service, shutdown_rx, grace, state.clone()));
        tracing::info!(service = state.service.short, addr = %local_addr, "listening");
        Ok(RunningEdge { local_addr, shutdown: shutdown_tx, task })
    }
}

/// A serving edge.
#[derive(Debug)]
pub struct RunningEdge {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEdge {
    /// The address actually bound (the port is known here when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and drains in-flight requests for at most the grace period;
    /// returns when the last connection is gone.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "edge server task failed");
        }
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

async fn accept_loop<S>(
    listener: TcpListener,
    service: EdgeService<S>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    state: Arc<EdgeState>,
) where
    EdgeService<S>:
        hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    <EdgeService<S> as hyper::service::Service<Request<Incoming>>>::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    // Slow-loris guard: a client must finish its headers within 10 s.
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone()).into_owned();
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning, and keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    state.draining.store(true, Ordering::Release);
    drop(listener);
    let in_flight = connections.len();
    tracing::info!(
        service = state.service.short,
        connections = in_flight,
        grace_secs = grace.as_secs_f64(),
        "draining"
    );
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            service = state.service.short,
            remaining = connections.len(),
            "grace period over; closing connections"
        );
    }
    connections.shutdown().await;
}

/// Wraps the routes with what every request gets.
struct EdgeService<S> {
    routes: S,
    state: Arc<EdgeState>,
}

impl<S: Clone> Clone for EdgeService<S> {
    fn clone(&self) -> Self {
        Self { routes: self.routes.clone(), state: self.state.clone() }
    }
}

/// Keeps the in-flight gauge and the metrics right even when a client disconnects mid-request
/// and the request's future is dropped.
struct InFlight {
    state: Arc<EdgeState>,
    scope: Arc<RequestScope>,
    method: http::Method,
    started: Instant,
    status: Option<StatusCode>,
    /// The request's SERVER span; the access log line is written inside it.
    span: tracing::Span,
}

impl InFlight {
    fn respond(&mut self, status: StatusCode) {
        self.status = Some(status);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let route = self.scope.route();
        // 499 (client closed request) for a request abandoned before its response was ready.
        let status = self.status.unwrap_or(StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST));
        self.state.metrics.finished(&self.method, route, status, elapsed);
        crate::trace::finish(&self.span, &self.method, route, status);
        let _inside = self.span.enter();
        macro_rules! access_log {
            ($level:expr) => {
                tracing::event!(
                    target: "wharf::http",
                    $level,
                    service = self.state.service.short,
                    method = %self.method,
                    route,
                    path = self.scope.uri.path(),
                    status = status.as_u16(),
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    correlation_id = self.scope.correlation_id.to_str().unwrap_or_default(),
                    "request"
                )
            };
        }
        if crate::trace::is_probe(self.scope.uri.path()) {
            access_log!(tracing::Level::DEBUG);
        } else {
            access_log!(tracing::Level::INFO);
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for EdgeService<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let scope = Arc::new(RequestScope::new(request.headers().get(CORRELATION_HEADER), request.uri().clone()));
        let span = crate::trace::server_span(
            self.state.service.short,
            request.method(),
            request.uri().path(),
            request.headers(),
            scope.correlation_id.to_str().unwrap_or_default(),
        );
        let mut guard = InFlight {
            state: self.state.clone(),
            scope: scope.clone(),
            method: request.method().clone(),
            started: Instant::now(),
            status: None,
            span: span.clone(),
        };
        guard.state.metrics.started();
        // With no chaos drill armed this is one atomic load and nothing else (no clone, no
        // allocation); see `chaos::Drill::faults_for`.
        let drill =
            guard.state.chaos.faults_for(request.uri().path()).map(|faults| (guard.state.chaos.clone(), faults));
        let mut routes = self.routes.clone();
        let handled = async move {
            if let Some((chaos, faults)) = drill
                && let Some(injected) = chaos.inject(&faults).await
            {
                return Ok(injected);
            }
            tower_service::Service::call(&mut routes, request).await
        };
        let response = SCOPE.scope(scope, handled).instrument(span);
        Box::pin(async move {
            let Ok(mut response) = response.await;
            security::apply(guard.scope.uri.path(), response.headers_mut());
            response.headers_mut().insert(CORRELATION_HEADER, guard.scope.correlation_id.clone());
            guard.respond(response.status());
            Ok(response)
        })
    }
}
