//! A deliberately tiny HTTP/1.1 responder for `GET /metrics` (one request per connection,
//! then close): enough for Prometheus and curl, no web framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Metrics;

/// Longest request head read, in bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request, in ms.
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
                    if let Err(e) = respond(sock, &m).await {
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

async fn read_head(sock: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

async fn respond(mut sock: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let head = tokio::time::timeout(Duration::from_millis(READ_TIMEOUT_MS), read_head(&mut sock))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))??;
    let line = String::from_utf8_lossy(head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default()).to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        ("GET", "/") => ("200 OK", "text/plain; charset=utf-8", "firstword: see /metrics\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET only\n".to_string()),
    };
    let resp = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_taken_port_names_the_key() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_l, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let e = bind(addr).await.unwrap_err();
            assert!(format!("{e:#}").contains("metrics.listen"), "{e:#}");
        });
    }
}
