//! The open connections of one listener: admission under the connection cap, and what each
//! connection's task needs to know to close an idle connection.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// The open connections, at most `max` of them.
pub(crate) struct Connections {
    max: usize,
    epoch: Instant,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    /// Signalled when the last connection closes (for the drain at shutdown).
    emptied: Notify,
    refused: AtomicU64,
    last_refusal_log_ms: AtomicU64,
}

/// One connection's state, shared between its task and the admission of new connections.
pub(crate) struct Connection {
    id: u64,
    epoch: Instant,
    /// Requests whose response is not produced yet.
    in_flight: AtomicUsize,
    /// Requests answered on this connection.
    served: AtomicU64,
    /// Milliseconds since `epoch` when the connection last had no request in progress.
    idle_since_ms: AtomicU64,
    /// Displaced by a new connection: close at once.
    pub(crate) evicted: Notify,
    /// A request started or ended: the idle deadline moved.
    pub(crate) changed: Notify,
}

/// What admission decided for a new connection.
pub(crate) enum Admission {
    Admitted(Slot),
    /// Every connection has a request in progress: the new one is closed.
    Refused,
}

/// A connection's place among the open ones; dropping it frees the place.
pub(crate) struct Slot {
    connections: Arc<Connections>,
    pub(crate) connection: Arc<Connection>,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            epoch: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            emptied: Notify::new(),
            refused: AtomicU64::new(0),
            last_refusal_log_ms: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Admits a new connection. At the cap, the connection idle the longest (no request in
    /// progress: silent, sending its head slowly, or kept alive between requests) is evicted
    /// to make room; a flood of silent connections therefore displaces itself, not the
    /// clients that send requests.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let now = self.now_ms();
        let mut open = self.lock();
        if open.len() >= self.max {
            let idlest = open
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.idle_since_ms.load(Ordering::Acquire))
                .cloned();
            let Some(idlest) = idlest else {
                drop(open);
                self.log_refusal(now);
                return Admission::Refused;
            };
            open.remove(&idlest.id);
            idlest.evicted.notify_one();
            log::debug!(
                event = "connection_evicted", idle_ms = now.saturating_sub(idlest.idle_since_ms.load(Ordering::Acquire));
                "connection limit of {} reached: closed the connection idle the longest", self.max
            );
        }
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(now),
            evicted: Notify::new(),
            changed: Notify::new(),
        });
        open.insert(connection.id, connection.clone());
        Admission::Admitted(Slot {
            connections: self.clone(),
            connection,
        })
    }

    /// One warning per 10 s at most, with the count since the last one: a flood must not
    /// flood the log too.
    fn log_refusal(&self, now: u64) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_refusal_log_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 10_000)
            && self
                .last_refusal_log_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.refused.store(0, Ordering::Relaxed);
            log::warn!(
                event = "connections_refused", refused = refused, max_connections = self.max;
                "connection limit of {} reached with a request in progress on every connection: refused {refused} connection(s)",
                self.max
            );
        }
    }

    /// Waits until every connection has closed.
    pub(crate) async fn drained(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.len() == 0 {
                return;
            }
            emptied.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.remove(&self.connection.id);
        if open.is_empty() {
            self.connections.emptied.notify_waiters();
        }
    }
}

impl Connection {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A request head arrived; the returned guard marks its end (response produced).
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When a kept-alive connection without a new request must close: `keep_alive` after its
    /// last response. None while a request is in progress or before the first one (hyper's
    /// header-read timeout covers a connection that never sends a request).
    pub(crate) fn keep_alive_deadline(&self, keep_alive: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.served.load(Ordering::Acquire) == 0 {
            return None;
        }
        let idle_since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.epoch + idle_since + keep_alive)
    }
}

/// A request in progress on a connection.
pub(crate) struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .idle_since_ms
            .store(connection.now_ms(), Ordering::Release);
        connection.served.fetch_add(1, Ordering::AcqRel);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
        connection.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(connections: &Arc<Connections>) -> Slot {
        match connections.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let connections = Connections::new(2);
        let busy = admitted(&connections);
        let _request = busy.connection.request_started();
        std::thread::sleep(Duration::from_millis(5));
        let idle = admitted(&connections);
        let newcomer = admitted(&connections);
        assert_eq!(connections.len(), 2);
        // The idle one was told to close; the busy one was not.
        let open: Vec<u64> = connections.lock().keys().copied().collect();
        assert!(open.contains(&busy.connection.id));
        assert!(open.contains(&newcomer.connection.id));
        assert!(!open.contains(&idle.connection.id));
    }

    #[test]
    fn with_a_request_in_progress_everywhere_a_new_connection_is_refused() {
        let connections = Connections::new(1);
        let busy = admitted(&connections);
        let _request = busy.connection.request_started();
        assert!(matches!(connections.admit(), Admission::Refused));
        assert_eq!(connections.len(), 1);
    }

    #[test]
    fn the_keep_alive_clock_runs_only_between_requests() {
        let connections = Connections::new(1);
        let slot = admitted(&connections);
        let keep_alive = Duration::from_secs(5);
        assert_eq!(slot.connection.keep_alive_deadline(keep_alive), None);
        let request = slot.connection.request_started();
        assert_eq!(slot.connection.keep_alive_deadline(keep_alive), None);
        drop(request);
        let deadline = slot.connection.keep_alive_deadline(keep_alive).unwrap();
        assert!(deadline > Instant::now() + Duration::from_secs(4));
        drop(slot);
        assert_eq!(connections.len(), 0);
    }
}
