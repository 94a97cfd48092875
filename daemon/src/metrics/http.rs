//! `GET /metrics` over hyper's HTTP/1.1 server (one request per connection, then close):
//! enough for Prometheus and curl, no web framework.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Metrics;

/// Longest request head read, in bytes (hyper's smallest buffer).
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request head, in ms.
const READ_TIMEOUT_MS: u64 = 2_000;

/// Binds `addr` (errors name the `metrics.listen` key) and returns the listener and the
/// address actually bound (port 0 → the port chosen).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await.with_context(|| format!("metrics.listen = \"{addr}\": cannot listen"))?;
    let local = l.local_addr().context("metrics listener address")?;
    Ok((l, local))
}

/// Serves until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let m = metrics.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| std::future::ready(Ok::<_, Infallible>(respond(&req, &m))));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_millis(READ_TIMEOUT_MS))
                        .max_buf_size(MAX_HEAD)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(sock), svc);
                    if let Err(e) = conn.await {
                        tracing::debug!("metrics request: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn respond<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        (&Method::GET, "/") => (StatusCode::OK, TEXT, "firstword: see /metrics\n".to_string()),
        (&Method::GET, _) => (StatusCode::NOT_FOUND, TEXT, "not found\n".to_string()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".to_string()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let m = Arc::new(Metrics::new());
            m.turns.inc_by(2);
            let (l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let task = tokio::spawn(serve(l, m));
            let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(ok.starts_with("HTTP/1.1 200 OK") && ok.contains("firstword_turns_total 2"), "{ok}");
            assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
            assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
            task.abort();
        });
    }

    #[test]
    fn a_client_that_never_finishes_its_request_is_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let task = tokio::spawn(serve(l, Arc::new(Metrics::new())));
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            // The server closes after its header timeout (2 s); the bound only stops a hang.
            let mut out = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
            assert!(r.is_ok(), "a half-sent request kept its connection open");
            assert!(!String::from_utf8_lossy(&out).contains("firstword_"), "metrics served without a whole request");
            task.abort();
        });
    }

    #[test]
    fn a_taken_port_names_the_key() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let e = bind(addr).await.unwrap_err();
            assert!(format!("{e:#}").contains("metrics.listen"), "{e:#}");
        });
    }
}
