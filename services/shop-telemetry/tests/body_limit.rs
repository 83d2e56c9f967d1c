//! A request body that stalls is answered 408 after the read timeout, so a client cannot hold
//! a connection by sending a head and then nothing.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use poem::{handler, post, EndpointExt, Route};
use shop_telemetry::{server::BoundListener, BodyLimit};

const READ_TIMEOUT: Duration = Duration::from_millis(300);

#[handler]
fn length(body: Vec<u8>) -> String {
    format!("got {} bytes", body.len())
}

/// Sends `head` and `body` (never more), returns the response and how long it took.
fn exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&response).contains("bytes")
                    || String::from_utf8_lossy(&response).ends_with('}')
                {
                    break;
                }
            }
        }
    }
    (
        String::from_utf8_lossy(&response).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408_after_the_read_timeout() {
    let listener = BoundListener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let app = Route::new()
        .at("/echo", post(length))
        .with(BodyLimit::new(1024).with_read_timeout(READ_TIMEOUT));
    tokio::spawn(listener.serve(app, std::future::pending()));
    tokio::task::spawn_blocking(move || {
        let (complete, _) = exchange(
            addr,
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n",
            b"hello",
        );
        assert!(complete.starts_with("HTTP/1.1 200"), "{complete}");
        assert!(complete.ends_with("got 5 bytes"), "{complete}");
        for head in [
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        ] {
            let (stalled, waited) = exchange(addr, head, b"0123456789");
            assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
            assert!(
                stalled.contains(r#"{"error":"the request body did not arrive within 0.3 s"}"#),
                "{stalled}"
            );
            assert!(
                waited >= READ_TIMEOUT && waited < READ_TIMEOUT * 4,
                "answered after {waited:?}"
            );
        }
    })
    .await
    .unwrap();
}
