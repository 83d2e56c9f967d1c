//! Order rate limits: token buckets per logged-in customer, per client IP for anonymous
//! orders, and one for the whole API, so no single client — and no crowd — can buy up the
//! catalogue in a burst. Each bucket holds a sixth of its per-minute budget (ten seconds'
//! worth) and refills continuously. Memory is bounded: at most [`MAX_TRACKED`] clients are
//! tracked; a full bucket is the same as none, so those are dropped first.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::settings::OrderLimits;

/// Clients tracked at once (customers and IPs together), about 64 bytes each.
pub const MAX_TRACKED: usize = 10_000;

/// Whose budget an order is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Customer(i32),
    Anonymous(IpAddr),
}

/// Why an order was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    /// The budget that ran out, orders per minute.
    pub per_minute: u32,
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Customer,
    Ip,
    /// The whole API, or too many clients to track.
    Global,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    per_minute: u32,
    capacity: f64,
    per_second: f64,
}

impl Rate {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            capacity: (f64::from(per_minute) / 6.0).max(1.0),
            per_second: f64::from(per_minute) / 60.0,
        }
    }

    fn full(&self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.capacity,
            updated: now,
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
    }

    /// How long until the bucket holds one order.
    fn wait(&self, bucket: &Bucket) -> Duration {
        Duration::from_secs_f64(((1.0 - bucket.tokens).max(0.0) / self.per_second).max(0.0))
    }
}

struct State {
    global: Bucket,
    clients: HashMap<Client, Bucket>,
}

pub struct OrderRateLimiter {
    customer: Rate,
    ip: Rate,
    global: Rate,
    state: Mutex<State>,
}

impl OrderRateLimiter {
    pub fn new(limits: OrderLimits) -> Self {
        let global = Rate::new(limits.global);
        Self {
            customer: Rate::new(limits.per_customer),
            ip: Rate::new(limits.per_ip),
            state: Mutex::new(State {
                global: global.full(Instant::now()),
                clients: HashMap::new(),
            }),
            global,
        }
    }

    fn rate(&self, client: Client) -> (Rate, Scope) {
        match client {
            Client::Customer(_) => (self.customer, Scope::Customer),
            Client::Anonymous(_) => (self.ip, Scope::Ip),
        }
    }

    /// Takes one order from `client`'s budget and the global one, or neither.
    pub fn take(&self, client: Client) -> Result<(), Limited> {
        self.take_at(client, Instant::now())
    }

    fn take_at(&self, client: Client, now: Instant) -> Result<(), Limited> {
        let (rate, scope) = self.rate(client);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.global.refill(&mut state.global, now);
        if !state.clients.contains_key(&client) && state.clients.len() >= MAX_TRACKED {
            self.forget_full_buckets(&mut state.clients, now);
            if state.clients.len() >= MAX_TRACKED {
                // More distinct clients within seconds than the map holds: a crowd, which is
                // what the global budget is for.
                return Err(Limited {
                    scope: Scope::Global,
                    per_minute: self.global.per_minute,
                    retry_after: Duration::from_secs(1),
                });
            }
        }
        let mut bucket = state
            .clients
            .get(&client)
            .copied()
            .unwrap_or_else(|| rate.full(now));
        rate.refill(&mut bucket, now);
        if bucket.tokens < 1.0 {
            state.clients.insert(client, bucket);
            return Err(Limited {
                scope,
                per_minute: rate.per_minute,
                retry_after: rate.wait(&bucket),
            });
        }
        if state.global.tokens < 1.0 {
            let retry_after = self.global.wait(&state.global);
            return Err(Limited {
                scope: Scope::Global,
                per_minute: self.global.per_minute,
                retry_after,
            });
        }
        bucket.tokens -= 1.0;
        state.global.tokens -= 1.0;
        state.clients.insert(client, bucket);
        Ok(())
    }

    fn forget_full_buckets(&self, clients: &mut HashMap<Client, Bucket>, now: Instant) {
        clients.retain(|client, bucket| {
            let (rate, _) = self.rate(*client);
            rate.refill(bucket, now);
            bucket.tokens < rate.capacity
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_customer: u32, per_ip: u32, global: u32) -> OrderRateLimiter {
        OrderRateLimiter::new(OrderLimits {
            per_customer,
            per_ip,
            global,
        })
    }

    fn ip(n: u32) -> Client {
        Client::Anonymous(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn a_client_gets_a_sixth_of_its_minute_at_once_then_the_refill() {
        let limiter = limiter(30, 30, 6000);
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.take_at(ip(1), start), Ok(()));
        }
        let refused = limiter.take_at(ip(1), start).unwrap_err();
        assert_eq!(refused.scope, Scope::Ip);
        assert_eq!(refused.per_minute, 30);
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        // Other clients have budgets of their own.
        assert_eq!(limiter.take_at(ip(2), start), Ok(()));
        assert_eq!(limiter.take_at(Client::Customer(1), start), Ok(()));
        // 30 a minute is one every 2 s.
        assert!(limiter
            .take_at(ip(1), start + Duration::from_millis(1900))
            .is_err());
        assert_eq!(
            limiter.take_at(ip(1), start + Duration::from_millis(2000)),
            Ok(())
        );
    }

    #[test]
    fn the_global_budget_caps_a_crowd_and_a_refusal_takes_nothing() {
        let limiter = limiter(30, 30, 60);
        let start = Instant::now();
        let accepted = (0..100)
            .filter(|n| limiter.take_at(ip(*n), start).is_ok())
            .count();
        assert_eq!(accepted, 10, "a sixth of 60");
        let refused = limiter.take_at(ip(500), start).unwrap_err();
        assert_eq!(
            (refused.scope, refused.retry_after),
            (Scope::Global, Duration::from_secs(1))
        );
        // The clients refused by the global budget kept theirs.
        let later = start + Duration::from_secs(10);
        for n in 10..15 {
            assert_eq!(limiter.take_at(ip(n), later), Ok(()), "client {n}");
        }
    }

    #[test]
    fn tracked_clients_are_bounded() {
        let limiter = limiter(30, 30, u32::MAX);
        let start = Instant::now();
        for n in 0..MAX_TRACKED as u32 {
            assert_eq!(limiter.take_at(ip(n), start), Ok(()));
        }
        // Every bucket is in use: a new client waits rather than growing the map.
        let refused = limiter.take_at(ip(u32::MAX), start).unwrap_err();
        assert_eq!(refused.scope, Scope::Global);
        assert_eq!(
            limiter.state.lock().unwrap().clients.len(),
            MAX_TRACKED,
            "no growth"
        );
        // Once the old buckets are full again they are forgotten to make room.
        let later = start + Duration::from_secs(60);
        assert_eq!(limiter.take_at(ip(u32::MAX), later), Ok(()));
        assert_eq!(limiter.state.lock().unwrap().clients.len(), 1);
    }
}
