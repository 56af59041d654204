//! A minimal HTTP/1.1 GET for health checks between demo components (no client dependency
//! in the library for one request line).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GET `path` on `host:port`; returns the status code, or why there is none.
pub(crate) async fn get_status(
    host: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<u16, String> {
    let fut = async {
        let mut s = TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        // The status line fits in the first bytes; read until we have it.
        while n < 12 {
            let m = s.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
            if m == 0 {
                break;
            }
            n += m;
        }
        parse_status(&buf[..n]).ok_or_else(|| "no HTTP status line".to_string())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    let code = text.strip_prefix("HTTP/1.")?.get(2..5)?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_line() {
        assert_eq!(super::parse_status(b"HTTP/1.1 503 Service"), Some(503));
        assert_eq!(super::parse_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(super::parse_status(b"garbage"), None);
    }
}
