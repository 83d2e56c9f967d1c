//! Password checks, bounded. Checking a password against the shop's Argon2 hashes takes 4 MiB
//! and several milliseconds of a core; unbounded, a login flood ran one check per request on
//! up to 512 threads (4.4 GiB under 64 clients, issue 14). The gate runs at most `hashers`
//! checks at once, lets `queue` more logins wait for one, and refuses any login beyond that
//! at once — which the caller answers with 429 and still records as a failed attempt, so a
//! flood shows in the brute-force and credential-stuffing rules instead of hiding.
//! Each check runs in a [`HashMemory`] the gate lends, one per hasher, made on first use and
//! kept: the checks' memory is `hashers × 4 MiB` (see [`crate::password`]).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinError,
};

use crate::{password::HashMemory, settings::LoginLimits};

/// What a refused login is told to wait (`Retry-After`): about what a queue of checks takes.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The login was refused: every hasher is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many logins are being checked right now")]
pub struct Overloaded;

pub struct LoginGate {
    /// Places for logins being checked or waiting: hashers + queue.
    places: Arc<Semaphore>,
    hashers: Arc<Semaphore>,
    memories: Memories,
}

/// The hashers' memories not lent right now. A check takes one (or makes one when none is
/// free) after its hasher permit, so there are never more than hashers.
type Memories = Arc<Mutex<Vec<HashMemory>>>;

/// A login with a place at the gate. The place is held until its password check is done,
/// even when the client goes away meanwhile.
pub struct Admitted {
    place: OwnedSemaphorePermit,
    hashers: Arc<Semaphore>,
    memories: Memories,
}

impl LoginGate {
    pub fn new(limits: LoginLimits) -> Self {
        let hashers = limits.hashers.max(1) as usize;
        Self {
            places: Arc::new(Semaphore::new(hashers + limits.queue as usize)),
            hashers: Arc::new(Semaphore::new(hashers)),
            memories: Arc::default(),
        }
    }

    /// A place for one login, or [`Overloaded`] at once when there is none.
    pub fn admit(&self) -> Result<Admitted, Overloaded> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| Overloaded)?;
        Ok(Admitted {
            place,
            hashers: self.hashers.clone(),
            memories: self.memories.clone(),
        })
    }

    /// The hash memories made so far (at most one per hasher).
    #[cfg(test)]
    fn memories_made(&self) -> usize {
        self.memories.lock().unwrap().len()
    }
}

impl Admitted {
    /// Runs `check` on the blocking pool once a hasher is free, with that hasher's memory.
    /// The hasher and the place go back when `check` returns, not when the caller stops
    /// waiting: a client that hangs up cannot make room for more checks than the bound.
    pub async fn run<T, F>(self, check: F) -> Result<T, JoinError>
    where
        F: FnOnce(&mut HashMemory) -> T + Send + 'static,
        T: Send + 'static,
    {
        let hasher = self
            .hashers
            .clone()
            .acquire_owned()
            .await
            .expect("the hashers' semaphore is never closed");
        let place = self.place;
        let memories = self.memories;
        tokio::task::spawn_blocking(move || {
            let _held = (hasher, place);
            let lent = memories
                .lock()
                .expect("no check panics holding the lock")
                .pop();
            let mut memory = lent.unwrap_or_else(HashMemory::new);
            let checked = check(&mut memory);
            memories
                .lock()
                .expect("no check panics holding the lock")
                .push(memory);
            checked
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn gate(hashers: u32, queue: u32) -> LoginGate {
        LoginGate::new(LoginLimits { hashers, queue })
    }

    #[tokio::test]
    async fn beyond_the_hashers_and_the_queue_a_login_is_refused_at_once() {
        let gate = gate(1, 1);
        let first = gate.admit().unwrap();
        let second = gate.admit().unwrap();
        assert_eq!(gate.admit().err(), Some(Overloaded));
        drop(first);
        let third = gate.admit().unwrap();
        assert_eq!(gate.admit().err(), Some(Overloaded));
        drop((second, third));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_checks_run_at_once_than_there_are_hashers() {
        let gate = gate(2, 30);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let checks: Vec<_> = (0..32)
            .map(|_| {
                let admitted = gate.admit().expect("32 places");
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(admitted.run(move |_memory| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Hold the hasher until two run at once (or a while has passed), so the
                    // bound is reached, and a gate without it would show more.
                    let waited = std::time::Instant::now();
                    while most.load(Ordering::SeqCst) < 2
                        && waited.elapsed() < Duration::from_secs(5)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        assert_eq!(gate.admit().err(), Some(Overloaded), "every place is taken");
        for check in checks {
            check.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(gate.memories_made(), 2, "one hash memory per hasher");
        // Every place is free again.
        let all: Vec<_> = (0..32).map(|_| gate.admit().unwrap()).collect();
        assert_eq!(all.len(), 32);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_keeps_its_place_when_its_client_goes_away() {
        let gate = gate(1, 0);
        let admitted = gate.admit().unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel();
        let request = tokio::spawn(admitted.run(move |_memory| {
            let _ = started.send(());
            let _ = released.recv();
        }));
        has_started.await.unwrap();
        // The client hangs up: its request is dropped while the check runs on.
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert_eq!(gate.admit().err(), Some(Overloaded), "the check still runs");
        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while gate.admit().is_err() {
            assert!(std::time::Instant::now() < deadline, "the place came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
