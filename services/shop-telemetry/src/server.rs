//! Binding (port 0 allowed, so tests can ask for a free port) and serving until shutdown.

use std::{future::Future, io, net::SocketAddr, time::Duration};

use poem::{
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    Endpoint, Server,
};
use tokio::task::JoinHandle;

/// How long in-flight requests may take to finish after shutdown starts. systemd's default
/// stop timeout (90 s) is well above it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound TCP listener that knows its real address.
pub struct BoundListener {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
}

impl BoundListener {
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let acceptor = TcpListener::bind(addr).into_acceptor().await?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| io::Error::other("listener has no socket address"))?;
        Ok(Self {
            acceptor,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `app` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve<E>(self, app: E, shutdown: impl Future<Output = ()> + Send) -> io::Result<()>
    where
        E: Endpoint + 'static,
    {
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(DRAIN_TIMEOUT))
            .await
    }
}

impl BoundListener {
    /// Serves `app` until `shutdown` (the signal future) resolves, logging why it stops; the
    /// service's `background` tasks (refresh loops, reapers) are stopped with it.
    pub async fn run<E, S>(
        self,
        app: E,
        shutdown: S,
        background: Vec<JoinHandle<()>>,
    ) -> io::Result<()>
    where
        E: Endpoint + 'static,
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
