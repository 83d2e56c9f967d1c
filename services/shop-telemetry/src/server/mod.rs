//! Binding (port 0 allowed, so tests can ask for a free port) and serving HTTP/1.1 until
//! shutdown, with bounded connections.
//!
//! The services serve their poem endpoint through hyper's HTTP/1 connection directly rather
//! than `poem::Server`: poem's server offers an I/O idle timeout but neither hyper's
//! `header_read_timeout` (it builds hyper-util's auto connection without a timer) nor a
//! connection cap, so a client could hold any number of silent connections. Here:
//! - hyper's `header_read_timeout` closes a connection that has not sent a complete request
//!   head within [`ConnectionLimits::header_read_timeout`] of the server starting to wait
//!   for one (after accept, and after each response);
//! - a kept-alive connection without a new request is closed after
//!   [`ConnectionLimits::keep_alive_timeout`];
//! - at most [`ConnectionLimits::max_connections`] are held ([`connections`]).

mod connections;
mod limits;

use std::{
    convert::Infallible, future::Future, io, net::SocketAddr, pin::Pin, sync::Arc, time::Duration,
};

use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::{
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
    Addr, Endpoint, EndpointExt, IntoEndpoint, Request,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use self::connections::{Admission, Connections, Slot};
pub use self::limits::{ConnectionLimits, DEFAULT_MAX_CONNECTIONS};

/// How long in-flight requests may take to finish after shutdown starts. systemd's default
/// stop timeout (90 s) is well above it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long accepting pauses after a failure such as running out of file descriptors, so a
/// failing accept does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A bound TCP listener that knows its real address.
pub struct BoundListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: ConnectionLimits,
}

impl BoundListener {
    /// Binds with the default [`ConnectionLimits`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, ConnectionLimits::default()).await
    }

    pub async fn bind_with(addr: SocketAddr, limits: ConnectionLimits) -> io::Result<Self> {
        limits.validate().map_err(io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `app` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve<E>(self, app: E, shutdown: impl Future<Output = ()> + Send) -> io::Result<()>
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        let app: Arc<dyn DynEndpoint> = Arc::new(app.into_endpoint().map_to_response());
        let connections = Connections::new(self.limits.max_connections as usize);
        // Draining: finish the request in progress, then close; Now: close (the drain timed
        // out).
        let (stop_tx, stop_rx) = watch::channel(Stop::Serving);
        let local = LocalAddr(Addr::SocketAddr(self.local_addr));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    log::warn!(event = "accept_failed", cause:% = err; "cannot accept a connection: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let slot = match connections.admit() {
                Admission::Admitted(slot) => slot,
                // Dropping the stream closes it.
                Admission::Refused => continue,
            };
            tokio::spawn(serve_connection(
                stream,
                ConnectionContext {
                    app: app.clone(),
                    local: local.clone(),
                    remote: RemoteAddr(Addr::SocketAddr(peer)),
                    limits: self.limits,
                    stop: stop_rx.clone(),
                },
                slot,
            ));
        }
        drop(self.listener);
        let _ = stop_tx.send(Stop::Draining);
        if tokio::time::timeout(DRAIN_TIMEOUT, connections.drained())
            .await
            .is_err()
        {
            let _ = stop_tx.send(Stop::Now);
            connections.drained().await;
        }
        Ok(())
    }

    /// Serves `app` until `shutdown` (the signal future) resolves, logging why it stops; the
    /// service's `background` tasks (refresh loops, reapers) are stopped with it.
    pub async fn run<E, S>(
        self,
        app: E,
        shutdown: S,
        background: Vec<JoinHandle<()>>,
    ) -> io::Result<()>
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
        S: Future<Output = io::Result<&'static str>> + Send,
    {
        let served = self
            .serve(app, async move {
                let signal = shutdown.await.unwrap_or("signal handler failure");
                log::info!(event = "service_stopping", signal = signal; "received {signal}, draining requests");
            })
            .await;
        for task in background {
            task.abort();
        }
        served?;
        log::info!(event = "service_stopped"; "stopped");
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Serving,
    Draining,
    Now,
}

type BoxedResponse<'a> = Pin<Box<dyn Future<Output = poem::Response> + Send + 'a>>;

/// The endpoint behind a trait object, so every connection task shares one.
trait DynEndpoint: Send + Sync {
    fn respond(&self, req: Request) -> BoxedResponse<'_>;
}

impl<E: Endpoint<Output = poem::Response>> DynEndpoint for E {
    fn respond(&self, req: Request) -> BoxedResponse<'_> {
        Box::pin(self.get_response(req))
    }
}

struct ConnectionContext {
    app: Arc<dyn DynEndpoint>,
    local: LocalAddr,
    remote: RemoteAddr,
    limits: ConnectionLimits,
    stop: watch::Receiver<Stop>,
}

async fn serve_connection(stream: tokio::net::TcpStream, ctx: ConnectionContext, slot: Slot) {
    let ConnectionContext {
        app,
        local,
        remote,
        limits,
        mut stop,
    } = ctx;
    let connection = slot.connection.clone();
    let service = service_fn({
        let connection = connection.clone();
        move |req: hyper::Request<Incoming>| {
            let in_flight = connection.request_started();
            let app = app.clone();
            let req = Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
            async move {
                let response = app.respond(req).await;
                drop(in_flight);
                Ok::<_, Infallible>(hyper::Response::from(response))
            }
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let keep_alive_deadline = connection.keep_alive_deadline(limits.keep_alive_timeout);
        let changed = connection.changed.notified();
        tokio::select! {
            // Finished, or failed (the client went away, or hyper's header-read timeout).
            _ = conn.as_mut() => break,
            () = connection.evicted.notified() => break,
            () = changed => {}
            () = sleep_until(keep_alive_deadline) => {
                if connection
                    .keep_alive_deadline(limits.keep_alive_timeout)
                    .is_some_and(|deadline| deadline <= std::time::Instant::now())
                {
                    break;
                }
            }
            Ok(()) = stop.changed() => match *stop.borrow_and_update() {
                Stop::Serving => {}
                Stop::Draining if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                Stop::Draining => {}
                Stop::Now => break,
            },
        }
    }
    drop(slot);
}

/// Sleeps until `deadline`, forever without one.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
