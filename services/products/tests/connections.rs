//! What a slow, idle or greedy client can hold (docs/contract.md, "HTTP conformance"): raw TCP
//! against the real products service with short limits, timing when the server lets go.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes); returns what was read and
/// when the close came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), Some(started.elapsed())),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), None),
        }
    }
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.service().local_addr()).await.unwrap()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(&[("HTTP_IDLE_TIMEOUT_SECS", "1"), ("HTTP_HEADER_TIMEOUT_SECS", "30")]).await;
    let mut silent = connect(&server).await;
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    let closed = closed.expect("the silent connection is closed");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(3), "closed after {closed:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_once_idle() {
    let server = TestServer::start_with(&[("HTTP_IDLE_TIMEOUT_SECS", "1"), ("HTTP_HEADER_TIMEOUT_SECS", "30")]).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let closed = closed.expect("the idle keep-alive connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    server.stop().await;
}

/// Reads one response that has a `Content-Length`, without waiting for a close.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a Content-Length");
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed mid-response: {text}");
        seen.extend_from_slice(&buf[..n]);
    }
}

// The ALB reuses a backend connection for up to its idle timeout (60 s), so an idle keep-alive
// connection must outlive the header timeout: only the idle timeout closes it.
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout() {
    let server = TestServer::start_with(&[("HTTP_HEADER_TIMEOUT_SECS", "1"), ("HTTP_IDLE_TIMEOUT_SECS", "4")]).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));

    // Idle for twice the header timeout, then reused: still open, still served.
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(2500), stream.read(&mut buf)).await;
    assert!(early.is_err(), "closed after a keep-alive pause shorter than the idle timeout: {early:?}");
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));

    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("closed once idle");
    assert!(closed >= Duration::from_millis(3500) && closed < Duration::from_secs(6), "closed after {closed:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_request_begun_on_a_kept_alive_connection_must_finish_its_headers_in_time() {
    let server = TestServer::start_with(&[("HTTP_HEADER_TIMEOUT_SECS", "1"), ("HTTP_IDLE_TIMEOUT_SECS", "30")]).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    stream.write_all(b"GET /health/live HTTP/1.1\r\n").await.unwrap();
    let (rest, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "no answer to unfinished headers: {rest}");
    let closed = closed.expect("the unfinished request is cut");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(3), "cut after {closed:?}");
    server.stop().await;
}

#[tokio::test]
async fn headers_trickled_past_the_header_timeout_are_cut() {
    let server = TestServer::start_with(&[("HTTP_HEADER_TIMEOUT_SECS", "1"), ("HTTP_IDLE_TIMEOUT_SECS", "30")]).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..20 {
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection trickling its headers was cut");
    assert!(started.elapsed() < Duration::from_secs(3), "cut after {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn a_body_trickled_at_one_byte_a_second_gets_408_and_a_close() {
    let server = TestServer::start_with(&[("HTTP_BODY_TIMEOUT_SECS", "2")]).await;
    let mut stream = connect(&server).await;
    let started = Instant::now();
    stream
        .write_all(
            b"POST /api/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let (mut read_half, mut write_half) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if write_half.write_all(b" ").await.is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), read_half.read_to_end(&mut seen)).await;
        trickle.abort();
        String::from_utf8_lossy(&seen).into_owned()
    });
    let response = reader.await.unwrap();
    let elapsed = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    assert!(elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5), "answered after {elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let server = TestServer::start_with(&[("MAX_CONNECTIONS", "2"), ("HTTP_IDLE_TIMEOUT_SECS", "30")]).await;
    let first = connect(&server).await;
    let _second = connect(&server).await;
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut third = connect(&server).await;
    third.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection is not served while two are open");

    drop(first);
    let (response, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "served once a slot is free: {response}");
    server.stop().await;
}
