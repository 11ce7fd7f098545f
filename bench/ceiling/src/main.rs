//! The HTTP ceiling for `bench/run.sh`: what this machine's hyper and tokio can serve at most.
//!
//! It answers every request with the same JSON body `GET /api/products/{id}` returns (given as the
//! first argument), over HTTP/1.1 keep-alive, with no routing, no database, no actor hop and no
//! logging: the distance between it and products under the same load is what wharf's own layers
//! cost.
//!
//! `wharf-ceiling <body> [port]` — prints the address it listens on, then serves until killed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The services' allocator, so the ceiling differs from them only in what wharf's layers do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let body = Bytes::from(args.next().unwrap_or_else(|| "{}".to_owned()));
    let port: u16 = args.next().and_then(|port| port.parse().ok()).unwrap_or(0);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that goes away mid-request is not the ceiling's concern.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
