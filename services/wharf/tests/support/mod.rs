//! What the CLI's black-box tests run against: the real `wharf` binary ([`wharf`], [`run`]), the
//! real `wharf up` as a child process on free ports ([`Platform`]), and an ALB-like front door
//! routing `/api/<service>…` to it ([`Ingress`]).
//!
//! Both are torn down when dropped, so a failing test never leaks a process or a listener.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use warp::Filter;
use warp::http::{HeaderMap, Method, Response};
pub use wharf_testkit::TempDir;

/// The `wharf` binary under test.
pub fn wharf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
}

/// Runs `wharf <args>` to completion.
pub fn run(args: &[&str]) -> Output {
    wharf().args(args).stdin(Stdio::null()).output().expect("wharf runs")
}

/// Three ports free right now: held together so they differ, then released for the caller to
/// take (or to use as addresses where nothing listens).
pub fn free_ports() -> [u16; 3] {
    let listeners = [(); 3].map(|()| TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|listener| listener.local_addr().unwrap().port())
}

/// A running `wharf up`.
pub struct Platform {
    child: Child,
    pub products: String,
    pub orders: String,
    pub notifications: String,
    pub dir: TempDir,
    ports: [u16; 3],
    vars: Vec<(String, String)>,
}

impl Platform {
    /// `wharf up --no-seed` in a fresh directory and a clean environment, with instant email
    /// delivery and `vars` on top (e.g. `CHAOS_ENABLED=true`); returns once all three services are
    /// ready.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("wharf-up");
        let ports = free_ports();
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let child = Self::spawn(&dir, ports, &vars);
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let mut platform = Self {
            child,
            products: url(ports[0]),
            orders: url(ports[1]),
            notifications: url(ports[2]),
            dir,
            ports,
            vars,
        };
        platform.wait_ready();
        platform
    }

    fn spawn(dir: &TempDir, ports: [u16; 3], vars: &[(String, String)]) -> Child {
        // Kept in the directory and shown if start-up fails; a file never fills up as a pipe would.
        // Appended to: a restarted platform adds to what the earlier run wrote.
        let stderr =
            std::fs::File::options().create(true).append(true).open(dir.path().join("wharf-up.stderr")).unwrap();
        let mut command = wharf();
        command
            .args(["up", "--no-seed"])
            .current_dir(dir.path())
            // Whatever the developer's shell exports (BUS, *_DATABASE_URL, CHAOS_ENABLED, …) must
            // not change what the tests run against.
            .env_clear()
            .env("PRODUCTS_PORT", ports[0].to_string())
            .env("ORDERS_PORT", ports[1].to_string())
            .env("NOTIFICATIONS_PORT", ports[2].to_string())
            .env("SEND_DELAY_EMAIL_MS", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (name, value) in vars {
            command.env(name, value);
        }
        command.spawn().expect("wharf up starts")
    }

    /// Kills the platform with SIGKILL, as a crash or `kill -9` would: nothing is flushed or
    /// released. Its directory (databases, bus) stays for [`Platform::restart`].
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops the platform with SIGINT, as Ctrl-C does, and returns its exit status once it has
    /// exited (failing the test if it takes longer than `within`).
    pub fn interrupt(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "could not send SIGINT to wharf up ({pid})");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "wharf up still running {within:?} after SIGINT:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `wharf up` again in the same directory, on the same ports and with the same
    /// variables, once the previous run has exited ([`Platform::kill`], [`Platform::interrupt`]).
    pub fn restart(&mut self) {
        assert!(self.child.try_wait().unwrap().is_some(), "restart needs the previous run to have exited");
        self.child = Self::spawn(&self.dir, self.ports, &self.vars);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for base in [self.products.clone(), self.orders.clone(), self.notifications.clone()] {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("wharf up exited during start-up ({status}):\n{}", self.stderr());
                }
                if http_status("GET", &format!("{base}/health/ready")) == Some(200) {
                    break;
                }
                assert!(Instant::now() < deadline, "{base} not ready within 60 s:\n{}", self.stderr());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// What `wharf up` wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharf-up.stderr")).unwrap_or_default()
    }

    /// `--products … --orders … --notifications …` for this platform.
    pub fn target_args(&self) -> Vec<String> {
        vec![
            "--products".into(),
            self.products.clone(),
            "--orders".into(),
            self.orders.clone(),
            "--notifications".into(),
            self.notifications.clone(),
        ]
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ALB-like front door to a [`Platform`]: `/api/products…`, `/api/orders…` and
/// `/api/notifications…` go to their service, anything else (`/health`, …) is 404. Only the
/// headers the CLI relies on are passed through. Guarded by a token, it answers 401 to any request
/// without `Authorization: Bearer <token>`, as a gateway checking JWTs would. It stops when dropped.
pub struct Ingress {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    /// Serves the proxy; dropping it stops it.
    _runtime: tokio::runtime::Runtime,
}

impl Ingress {
    pub fn start(platform: &Platform) -> Self {
        Self::guarded(platform, None)
    }

    /// The front door, letting in only requests that carry `token` when one is given.
    pub fn guarded(platform: &Platform, token: Option<&str>) -> Self {
        let expected = token.map(|token| format!("Bearer {token}"));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let routes = [
            ("/api/products", platform.products.clone()),
            ("/api/orders", platform.orders.clone()),
            ("/api/notifications", platform.notifications.clone()),
        ];
        let client = reqwest::Client::new();
        let proxy = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method: Method,
                      path: warp::path::FullPath,
                      query: String,
                      headers: HeaderMap,
                      body: bytes::Bytes| {
                    let (client, routes, expected) = (client.clone(), routes.clone(), expected.clone());
                    async move {
                        if let Some(expected) = expected
                            && headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
                        {
                            let problem =
                                r#"{"type":"about:blank","status":401,"detail":"a valid bearer token is required"}"#;
                            return Response::builder()
                                .status(401)
                                .header("content-type", "application/problem+json")
                                .header("www-authenticate", "Bearer")
                                .body(problem.as_bytes().to_vec())
                                .unwrap();
                        }
                        let Some((_, backend)) = routes.iter().find(|(prefix, _)| path.as_str().starts_with(prefix))
                        else {
                            return Response::builder().status(404).body(Vec::new()).unwrap();
                        };
                        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
                        let mut request =
                            client.request(method, format!("{backend}{}{query}", path.as_str())).body(body);
                        for name in ["content-type", "x-correlation-id", "idempotency-key"] {
                            if let Some(value) = headers.get(name) {
                                request = request.header(name, value);
                            }
                        }
                        // A backend that does not answer is a 502, as from a real load balancer.
                        let bad_gateway = || Response::builder().status(502).body(Vec::new()).unwrap();
                        let Ok(answer) = request.send().await else {
                            return bad_gateway();
                        };
                        let mut response = Response::builder().status(answer.status());
                        for (name, value) in answer.headers() {
                            response = response.header(name, value);
                        }
                        match answer.bytes().await {
                            Ok(body) => response.body(body.to_vec()).unwrap(),
                            Err(_) => bad_gateway(),
                        }
                    }
                },
            );
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(warp::serve(proxy).incoming(listener).run());
        Self { url, _runtime: runtime }
    }
}

/// The status of a bodiless request, or `None` when nothing answered (blocking; for tests only).
pub fn http_status(method: &str, url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
