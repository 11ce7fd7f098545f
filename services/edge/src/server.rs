//! The edge server: binds, serves a service's routes with the shared behaviour around them, and
//! shuts down gracefully.
//!
//! Routing stays in warp filters; the connection loop is hyper's, driven here rather than by
//! `warp::serve` so the edge can (a) wrap every request — correlation id, security headers,
//! metrics, the access log, chaos faults when a drill is armed — including warp's own
//! rejections, (b) answer `405` + `Allow` and `HEAD` from the route table before warp routes,
//! (c) bound what a slow or idle client can hold — headers, body and idle time are timed, and
//! at most `max_connections` connections are served at once — and (d) bound the drain: after
//! the shutdown signal it stops accepting, lets in-flight requests finish for up to the grace
//! period, then cuts what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;
use utoipa::openapi::OpenApi as OpenApiDoc;
use warp::reply::Response;
use warp::{Filter, Rejection};
use wharf_actors::{Liveness, SupervisorHandle};

use crate::auth::{AuthSettings, Gate, KeySetError};
use crate::connection::{Activity, Watched};
use crate::health::Check;
use crate::metrics::HttpMetrics;
use crate::problem::Problem;
use crate::rate_limit::{ClientLimiter, RateLimitSettings, Verdict};
use crate::request::{CORRELATION_HEADER, RequestScope, SCOPE};
use crate::route_table::{RouteTable, allow_header};
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
    /// What one client may hold: timeouts and the connection bound.
    pub connections: ConnectionLimits,
    /// Who may call what (`AUTH_MODE` and its settings).
    pub auth: AuthSettings,
    /// Per-client limits on `/api/*` (`RATE_LIMIT_*`, `TRUST_FORWARDED_FOR`).
    pub rate_limit: RateLimitSettings,
}

/// `HTTP_IDLE_TIMEOUT_SECS` by default: above the ALB's idle timeout (`docs/deployment.toml`,
/// `[ingress] alb_idle_timeout_secs`), so the ALB never reuses a connection the service closed.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 75;

/// Bounds on what a slow, idle or greedy client can hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must all arrive within this of its first byte (slow-loris guard).
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its handler reads it (408 and a close).
    pub body_timeout: Duration,
    /// A connection with no request in flight and none begun for this long is closed, whatever
    /// its protocol (also one that never sends a byte: hyper's protocol detection would wait
    /// forever). Longer than the load balancer's idle timeout, so that it closes first.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: 1024,
        }
    }
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The port is taken or the address is not ours.
    #[error("cannot listen on {addr}: {source} (set {port_variable} to another port, or HOST to another address)")]
    Bind { addr: SocketAddr, port_variable: &'static str, source: std::io::Error },
    /// `AUTH_MODE=jwt` and the issuer's keys cannot be had: no request could be authenticated.
    #[error("{0} (AUTH_JWKS_URL, or AUTH_ISSUER's /.well-known/jwks.json)")]
    Jwks(#[from] KeySetError),
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
    /// Each path's methods, for 405 + `Allow` and `HEAD`.
    pub(crate) route_table: RouteTable,
    pub(crate) body_timeout: Duration,
    /// Authentication: open, or checking bearer JWTs.
    pub(crate) gate: Gate,
    /// Per-client limits on `/api/*`, when on.
    pub(crate) limiter: Option<ClientLimiter>,
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
    /// Routes the service serves outside its OpenAPI document.
    extra_routes: Vec<(&'static str, Vec<Method>)>,
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
            extra_routes: Vec::new(),
        }
    }

    /// Declares a route the service serves but does not document (`/admin/dlq`), so that a
    /// wrong method on it is a 405 with `Allow` like everywhere else.
    pub fn undocumented_route(mut self, template: &'static str, methods: &[Method]) -> Self {
        self.extra_routes.push((template, methods.to_vec()));
        self
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

    /// The service's OpenAPI document; the shared endpoints are merged in, and its `security`
    /// kept only when the edge authenticates.
    pub fn openapi(mut self, doc: OpenApiDoc) -> Self {
        self.doc = docs::merged(doc, matches!(self.config.auth, AuthSettings::Jwt(_)));
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

        let route_table = self.route_table();
        let gate = Gate::start(&self.config.auth).await?;
        let mut registry = self.registry;
        if let Some(fetches) = gate.fetches() {
            registry.register("auth_jwks_fetches", "Fetches of the issuer's signing keys (JWKS)", fetches);
        }
        let limiter = ClientLimiter::new(self.config.rate_limit);
        if let Some(limiter) = &limiter {
            registry.register("rate_limit_clients", "Clients the rate limiter tracks", limiter.clients.clone());
        }
        let state = Arc::new(EdgeState {
            route_table,
            gate,
            limiter,
            body_timeout: self.config.connections.body_timeout,
            service: self.service,
            metrics: self.metrics,
            registry,
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
        // Each connection gets its own `Activity`; this one is replaced before any request.
        let service = EdgeService {
            routes: warp::service(routes),
            state: state.clone(),
            activity: Arc::new(Activity::new()),
            peer: None,
        };

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let grace = self.config.shutdown_grace;
        let limits = self.config.connections;
        let task = tokio::spawn(accept_loop(listener, service, shutdown_rx, grace, limits, state.clone()));
        tracing::info!(service = state.service.short, addr = %local_addr, "listening");
        Ok(RunningEdge { local_addr, shutdown: shutdown_tx, task })
    }
}

impl Edge {
    /// Every path the edge will serve and its methods: the document's, the shared pages (also
    /// under the service's prefix), chaos when enabled, and what the service declared.
    fn route_table(&self) -> RouteTable {
        let mut table = RouteTable::from_doc(&self.doc);
        let operational = ["/health", "/health/live", "/health/ready", "/openapi.json", "/swagger", "/swagger/*"];
        for path in operational {
            table.add(path, &[Method::GET]);
            table.add(&format!("/{}{path}", self.service.short), &[Method::GET]);
        }
        if self.config.chaos_enabled {
            chaos::add_routes(&mut table);
        }
        for (template, methods) in &self.extra_routes {
            table.add(template, methods);
        }
        table
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
    limits: ConnectionLimits,
    state: Arc<EdgeState>,
) where
    EdgeService<S>:
        hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    <EdgeService<S> as hyper::service::Service<Request<Incoming>>>::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    // One permit per open connection: past the bound, new connections wait in the kernel's
    // listen backlog (and the client's connect timeout) instead of taking memory and tasks here.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let next = async {
            let permit = slots.clone().acquire_owned().await;
            (permit, listener.accept().await)
        };
        tokio::select! {
            (permit, accepted) = next => match (permit, accepted) {
                (Ok(permit), Ok((stream, peer))) => {
                    let _ = stream.set_nodelay(true);
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    // The header and idle clocks are the connection's `Activity`: hyper's own
                    // header timeout would also cut idle keep-alive connections.
                    builder.http1().header_read_timeout(None);
                    let activity = Arc::new(Activity::new());
                    let service = EdgeService { activity: activity.clone(), peer: Some(peer.ip()), ..service.clone() };
                    let io = TokioIo::new(Watched::new(stream, activity.clone()));
                    let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        let _permit = permit;
                        tokio::select! {
                            result = connection => if let Err(err) = result {
                                tracing::debug!(error = %err, "connection ended with an error");
                            },
                            // Dropping the connection closes the socket.
                            expiry = activity.expired(limits.idle_timeout, limits.header_timeout) => {
                                tracing::debug!(?expiry, "connection closed");
                            }
                        }
                    });
                }
                (Err(_), _) => break,
                (_, Err(err)) => {
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
    /// The connection this service instance answers on.
    activity: Arc<Activity>,
    /// Its peer's address (the rate limiter's key unless `X-Forwarded-For` is trusted).
    peer: Option<IpAddr>,
}

impl<S: Clone> Clone for EdgeService<S> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            state: self.state.clone(),
            activity: self.activity.clone(),
            peer: self.peer,
        }
    }
}

/// Keeps the in-flight gauge and the metrics right even when a client disconnects mid-request
/// and the request's future is dropped.
struct InFlight {
    state: Arc<EdgeState>,
    activity: Arc<Activity>,
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
        self.activity.end();
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
                    subject = self.scope.subject.get().map(String::as_str),
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

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let mut scope = RequestScope::new(request.headers().get(CORRELATION_HEADER), request.uri().clone());
        scope.body_timeout = self.state.body_timeout;
        let scope = Arc::new(scope);
        self.activity.begin();
        let span = crate::trace::server_span(
            self.state.service.short,
            request.method(),
            request.uri().path(),
            request.headers(),
            scope.correlation_id.to_str().unwrap_or_default(),
        );
        let mut guard = InFlight {
            activity: self.activity.clone(),
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
        let limited =
            guard.state.limiter.as_ref().filter(|_| request.uri().path().starts_with("/api/")).map(|limiter| {
                let client = limiter.client(self.peer, request.headers());
                limiter.check(client)
            });
        let refusal = refuse(&guard.state.route_table, &request);
        let access = guard.state.route_table.access(request.method(), request.uri().path());
        let state = guard.state.clone();
        // HEAD is GET without the body: hyper drops the body of a response to a HEAD request and
        // keeps its length, so the routes only ever see GET.
        if request.method() == Method::HEAD {
            *request.method_mut() = Method::GET;
        }
        let mut routes = self.routes.clone();
        let handled = async move {
            if let (Some(limiter), Some(verdict @ Verdict::Limited { .. })) = (&state.limiter, &limited) {
                return Ok::<Response, Infallible>(limiter.refusal(verdict));
            }
            let routed = async {
                if let Some(refusal) = refusal {
                    return Ok(refusal.into_response());
                }
                match state.gate.admit(access, request.headers().get(header::AUTHORIZATION)).await {
                    Ok(Some(caller)) => {
                        tracing::Span::current().record("subject", caller.subject.as_str());
                        let _ = SCOPE.try_with(|scope| scope.subject.set(caller.subject));
                    }
                    Ok(None) => {}
                    Err(refused) => return Ok(refused),
                }
                if let Some((chaos, faults)) = drill
                    && let Some(injected) = chaos.inject(&faults).await
                {
                    return Ok(injected);
                }
                tower_service::Service::call(&mut routes, request).await
            };
            let Ok(mut response) = routed.await;
            if let (Some(limiter), Some(verdict)) = (&state.limiter, &limited) {
                limiter.annotate(verdict, response.headers_mut());
            }
            Ok(response)
        };
        let response = SCOPE.scope(scope, handled).instrument(span);
        Box::pin(async move {
            let Ok(mut response) = response.await;
            if matches!(response.status(), StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE) {
                // The rest of the body was not read: the connection cannot carry another request.
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            security::apply(guard.scope.uri.path(), response.headers_mut());
            response.headers_mut().insert(CORRELATION_HEADER, guard.scope.correlation_id.clone());
            guard.respond(response.status());
            Ok(response)
        })
    }
}

/// A request the edge answers itself, before routing.
enum Refusal {
    /// The path exists, but not with this method.
    MethodNotAllowed(Vec<Method>),
    /// The query string carries a control character that no handler may see (see `strict_json`).
    ControlInQuery,
}

impl Refusal {
    /// The problem response; called inside the request's scope, for its correlation id.
    fn into_response(self) -> Response {
        match self {
            Self::MethodNotAllowed(methods) => {
                let detail = format!("This path accepts {}.", allow_header(&methods));
                let mut response =
                    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "", "Method Not Allowed", detail).into_response();
                if let Ok(allow) = HeaderValue::from_str(&allow_header(&methods)) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
            Self::ControlInQuery => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "Invalid query string",
                "The query string contains a control character (percent-encoded U+0000–U+001F).",
            )
            .into_response(),
        }
    }
}

fn refuse<B>(table: &RouteTable, request: &Request<B>) -> Option<Refusal> {
    if let Some(methods) = table.allowed(request.uri().path())
        && !methods.contains(request.method())
    {
        return Some(Refusal::MethodNotAllowed(methods));
    }
    let query = request.uri().query().unwrap_or_default();
    query.contains('%').then(|| has_encoded_control(query)).filter(|found| *found).map(|_| Refusal::ControlInQuery)
}

/// Whether a query string percent-encodes a control character wharf refuses in text.
fn has_encoded_control(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| crate::strict_json::is_forbidden_control(char::from(b)))
    })
}
