//! The tokio runtime every service (and labctl) runs on, with its threads bounded.
//!
//! tokio's defaults are one worker per core and up to 512 blocking threads. The services run
//! diesel queries and password hashing on the blocking pool, so a flood of slow requests
//! (logins, or any request while PostgreSQL is slow) used to grow a thread per request, each
//! with its stack and — in glibc — a malloc arena of its own: the API reached 4.4 GiB under 64
//! login clients (issue 14). Bounded, a burst waits in tokio's queue for a thread instead;
//! the queue is bounded by the connections a service holds (`--max-connections`).
//! The NixOS units' `TasksMax` is derived from these figures
//! (`nixos-modules/lib/unit-limits.json`).

use std::{future::Future, process::ExitCode};

/// Blocking threads at most: the database pool's connections (one per core by default, each
/// used from a blocking thread, and requests waiting up to its connection timeout for one),
/// the password hashes of the API (a few at once), and headroom for requests that wait.
pub const MAX_BLOCKING_THREADS: usize = 32;

/// Worker threads at most: one per core up to this many. A lab service needs no more, and a
/// fixed ceiling keeps the thread count — and the units' `TasksMax` — independent of the host.
pub const MAX_WORKER_THREADS: usize = 8;

/// The threads a runtime of [`build`] holds at most: its workers, its blocking threads and
/// the process's main thread (which waits in `block_on`).
pub fn max_threads(worker_threads: usize) -> usize {
    1 + worker_threads + MAX_BLOCKING_THREADS
}

/// Workers for this host: one per core, at most [`MAX_WORKER_THREADS`].
pub fn default_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .min(MAX_WORKER_THREADS)
}

/// A multi-threaded runtime with `worker_threads` workers and at most
/// [`MAX_BLOCKING_THREADS`] blocking threads.
pub fn build(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
}

/// Runs a service's `main` on a bounded runtime ([`build`] with
/// [`default_worker_threads`]) and turns its result into the exit status
/// ([`crate::exit_status`]).
pub fn run<F>(binary: &str, main: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    match build(default_worker_threads()) {
        Ok(runtime) => crate::exit_status(binary, runtime.block_on(main)),
        Err(err) => crate::exit_status(
            binary,
            Err(anyhow::Error::new(err).context("cannot start the async runtime")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Duration,
    };

    use super::*;

    #[test]
    fn a_burst_of_blocking_work_waits_for_the_bounded_threads() {
        let runtime = build(2).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let burst = 3 * MAX_BLOCKING_THREADS;
        let finished = runtime.block_on(async {
            let tasks: Vec<_> = (0..burst)
                .map(|_| {
                    let (running, most) = (running.clone(), most.clone());
                    tokio::task::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Hold the thread until the bound is reached (or a while has passed),
                        // so the first tasks are all running at once.
                        let waited = std::time::Instant::now();
                        while most.load(Ordering::SeqCst) < MAX_BLOCKING_THREADS
                            && waited.elapsed() < Duration::from_secs(5)
                        {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let mut finished = 0;
            for task in tasks {
                task.await.unwrap();
                finished += 1;
            }
            finished
        });
        assert_eq!(finished, burst, "every task ran, the rest after waiting");
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= MAX_BLOCKING_THREADS,
            "{most} blocking tasks ran at once"
        );
        // The bound is reached, so the test would see a runtime without it.
        assert_eq!(most, MAX_BLOCKING_THREADS);
    }

    #[test]
    fn workers_are_one_per_core_up_to_the_ceiling() {
        let workers = default_worker_threads();
        assert!((1..=MAX_WORKER_THREADS).contains(&workers));
        assert_eq!(max_threads(workers), 1 + workers + MAX_BLOCKING_THREADS);
    }
}
