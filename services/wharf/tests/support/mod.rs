//! `wharf up` as a real child process on free ports, for the CLI's black-box tests.
//!
//! The child is killed when the [`Platform`] is dropped, so a failing test never leaks it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use wharf_testkit::TempDir;

/// The `wharf` binary under test.
pub fn wharf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
}

/// Runs `wharf <args>` to completion.
pub fn run(args: &[&str]) -> Output {
    wharf().args(args).stdin(Stdio::null()).output().expect("wharf runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `wharf up`.
pub struct Platform {
    child: Child,
    pub products: String,
    pub orders: String,
    pub notifications: String,
    pub dir: TempDir,
}

impl Platform {
    /// `wharf up --no-seed` in a fresh directory with instant email delivery and `vars` on top;
    /// returns once all three services are ready.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("wharf-up");
        let ports = [free_port(), free_port(), free_port()];
        let mut command = wharf();
        command
            .args(["up", "--no-seed"])
            .current_dir(dir.path())
            .env("PRODUCTS_PORT", ports[0].to_string())
            .env("ORDERS_PORT", ports[1].to_string())
            .env("NOTIFICATIONS_PORT", ports[2].to_string())
            .env("SEND_DELAY_EMAIL_MS", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let child = command.spawn().expect("wharf up starts");
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let mut platform =
            Self { child, products: url(ports[0]), orders: url(ports[1]), notifications: url(ports[2]), dir };
        platform.wait_ready();
        platform
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for base in [self.products.clone(), self.orders.clone(), self.notifications.clone()] {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("wharf up exited during start-up: {status}");
                }
                if http_status("GET", &format!("{base}/health/ready")) == Some(200) {
                    break;
                }
                assert!(Instant::now() < deadline, "{base} not ready within 60 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
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
