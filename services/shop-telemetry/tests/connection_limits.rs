//! Connections a client holds without sending requests: they are closed after the header-read
//! timeout, displaced when the cap is reached, and never stop `/healthz` from answering.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{get, handler, web::Data, EndpointExt, Route};
use shop_telemetry::server::{BoundListener, ConnectionLimits};
use tokio::sync::{oneshot, Semaphore};

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(1000);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_millis(500);

#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// Answers once the test releases a permit: a request in progress for as long as it likes.
#[handler]
async fn hold(gate: Data<&Arc<Semaphore>>) -> &'static str {
    let _ = gate.0.acquire().await;
    "released"
}

struct Server {
    addr: SocketAddr,
    gate: Arc<Semaphore>,
    _stop: oneshot::Sender<()>,
}

async fn start(max_connections: u32) -> Server {
    let limits = ConnectionLimits {
        max_connections,
        header_read_timeout: HEADER_READ_TIMEOUT,
        keep_alive_timeout: KEEP_ALIVE_TIMEOUT,
    };
    let listener = BoundListener::bind_with("127.0.0.1:0".parse().unwrap(), limits)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let gate = Arc::new(Semaphore::new(0));
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/hold", get(hold))
        .data(gate.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(listener.serve(app, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        gate,
        _stop: stop,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One request on `stream` (kept alive), its status line and body.
fn request(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&response).ends_with("ok")
        && !String::from_utf8_lossy(&response).ends_with("released")
    {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response ended: {response:?}");
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(response).unwrap()
}

/// How long until the server closes `stream` (a read returns end of file or a reset).
fn time_to_close(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still open after 10 s"
        );
    }
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_beyond_the_cap_do_not_stop_healthz_and_are_closed() {
    let server = start(8).await;
    let addr = server.addr;
    blocking(move || {
        let mut silent: Vec<TcpStream> = (0..40).map(|_| connect(addr)).collect();
        // Give the server time to accept all of them.
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let mut client = connect(addr);
        let response = request(&mut client, "/healthz");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            started.elapsed() < HEADER_READ_TIMEOUT / 2,
            "/healthz waited {:?} behind the silent connections",
            started.elapsed()
        );
        // Every silent connection is closed: displaced at once, or by the header-read timeout.
        let slowest = silent
            .iter_mut()
            .map(time_to_close)
            .max()
            .unwrap_or_default();
        assert!(
            slowest < HEADER_READ_TIMEOUT + Duration::from_millis(700),
            "a silent connection stayed open {slowest:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let server = start(64).await;
    let addr = server.addr;
    blocking(move || {
        let mut silent = connect(addr);
        let waited = time_to_close(&mut silent);
        assert!(
            waited >= HEADER_READ_TIMEOUT - Duration::from_millis(100)
                && waited < HEADER_READ_TIMEOUT + Duration::from_millis(700),
            "closed after {waited:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_byte_by_byte_is_cut_off() {
    let server = start(64).await;
    let addr = server.addr;
    blocking(move || {
        let mut slow = connect(addr);
        let head =
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa";
        let started = Instant::now();
        let mut cut_off = false;
        for byte in head {
            if slow.write_all(&[*byte]).is_err() {
                cut_off = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still sending when the timeout struck, or the server closes it now.
        assert!(cut_off || time_to_close(&mut slow) < HEADER_READ_TIMEOUT);
        assert!(
            started.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_without_a_new_request_is_closed() {
    let server = start(64).await;
    let addr = server.addr;
    blocking(move || {
        let mut client = connect(addr);
        assert!(request(&mut client, "/healthz").starts_with("HTTP/1.1 200"));
        // It is kept alive: a second request on it is answered.
        assert!(request(&mut client, "/healthz").starts_with("HTTP/1.1 200"));
        let waited = time_to_close(&mut client);
        assert!(
            waited >= KEEP_ALIVE_TIMEOUT - Duration::from_millis(100)
                && waited < KEEP_ALIVE_TIMEOUT + Duration::from_millis(500),
            "closed after {waited:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_request_in_progress_on_every_connection_a_new_one_is_closed() {
    let server = start(2).await;
    let addr = server.addr;
    let gate = server.gate.clone();
    let held = std::thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
        for stream in &mut streams {
            write!(stream, "GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        }
        streams
    })
    .join()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    blocking(move || {
        let mut refused = connect(addr);
        assert!(time_to_close(&mut refused) < Duration::from_millis(500));
    });
    // The requests in progress were not disturbed.
    gate.add_permits(2);
    blocking(move || {
        for mut stream in held {
            let mut response = String::new();
            let mut buf = [0u8; 256];
            while !response.ends_with("released") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "closed: {response}");
                response.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        }
    });
}
