//! Visitor sessions: a random id in the `shop_session` cookie names an in-memory cart.
//!
//! A session is created only when a cart is first written (`POST /cart/items`): page views
//! without a cookie create none, so a flood of them costs nothing here. A session lives until
//! it has been idle for the session timeout. The store holds at most [`MAX_SESSIONS`]; when it
//! is full of live sessions a new one is refused ([`SessionsFull`]) rather than evicting a
//! visitor's cart, and expired ones make room first. Sessions are kept in recency order, which
//! makes pruning cheap.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use poem::http::{header, HeaderMap};
use rand::Rng;

use crate::cart::Cart;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "shop_session";
/// Most sessions held at once. A session costs about 0.2 KiB with an empty cart: 100,000 of
/// them took 36–46 MiB of resident memory (bench/README.md), this many stay well inside the
/// services' 30 MB budget; the lab's traffic keeps its cookies and needs a few hundred.
pub const MAX_SESSIONS: u32 = 20_000;
/// How often expired sessions are pruned in the background.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// A session id: 128 random bits as lower-case hex.
const ID_LEN: usize = 32;

/// The store is full of live sessions: a new cart must wait until some expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shop holds as many carts as it can right now; try again in a few minutes")]
pub struct SessionsFull;

/// The session a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// Created by this request: the response must set the cookie.
    pub is_new: bool,
}

impl Session {
    /// What logs show: a prefix of the id, enough to follow one visitor, not enough to
    /// take over the session.
    pub fn tag(&self) -> &str {
        &self.id[..8.min(self.id.len())]
    }

    /// The `Set-Cookie` value for a new session. No `Expires`: the browser forgets it when it
    /// closes, and the server forgets it after the idle timeout.
    pub fn set_cookie(&self) -> String {
        format!("{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax", self.id)
    }
}

/// The `shop_session` value a request presents, if any.
pub fn presented_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim() == COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// The sessions of one frontend instance.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<Mutex<Store>>,
    timeout: Duration,
    capacity: usize,
}

#[derive(Default)]
struct Store {
    sessions: HashMap<String, Entry>,
    /// Touch sequence number → session id, oldest first.
    recency: BTreeMap<u64, String>,
    next_seq: u64,
}

struct Entry {
    cart: Cart,
    last_seen: Instant,
    seq: u64,
}

impl Store {
    fn touch(&mut self, id: &str, now: Instant) {
        let seq = self.next_seq;
        if let Some(entry) = self.sessions.get_mut(id) {
            self.next_seq += 1;
            self.recency.remove(&entry.seq);
            entry.seq = seq;
            entry.last_seen = now;
            self.recency.insert(seq, id.to_owned());
        }
    }

    /// Forgets the least recently seen session if it has expired; false when it is live (or
    /// there is none).
    fn prune_oldest(&mut self, now: Instant, timeout: Duration) -> bool {
        let Some((&seq, id)) = self.recency.first_key_value() else {
            return false;
        };
        let expired = self
            .sessions
            .get(id)
            .is_none_or(|e| now.duration_since(e.last_seen) >= timeout);
        if !expired {
            return false;
        }
        let id = id.clone();
        self.recency.remove(&seq);
        self.sessions.remove(&id);
        log::debug!(event = "session_expired", session = &id[..8]; "session expired after {} s idle", timeout.as_secs());
        true
    }

    /// Adds a session with an empty cart; refused when the store is full of live sessions
    /// (expired ones make room first).
    fn insert(
        &mut self,
        id: String,
        now: Instant,
        capacity: usize,
        timeout: Duration,
    ) -> Result<(), SessionsFull> {
        while self.sessions.len() >= capacity.max(1) {
            if !self.prune_oldest(now, timeout) {
                return Err(SessionsFull);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.recency.insert(seq, id.clone());
        self.sessions.insert(
            id,
            Entry {
                cart: Cart::default(),
                last_seen: now,
                seq,
            },
        );
        Ok(())
    }

    fn remove(&mut self, id: &str) {
        if let Some(entry) = self.sessions.remove(id) {
            self.recency.remove(&entry.seq);
        }
    }
}

impl Sessions {
    pub fn new(timeout: Duration, capacity: usize) -> Self {
        Self {
            store: Arc::default(),
            timeout,
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session the request presents (its idle clock restarted), if any. Never
    /// creates one: reading pages needs no session.
    pub fn find(&self, presented: Option<&str>) -> Option<Session> {
        let id = presented.filter(|id| is_valid_id(id))?;
        let now = Instant::now();
        let mut store = self.lock();
        match store.sessions.get(id) {
            Some(entry) if now.duration_since(entry.last_seen) < self.timeout => {
                store.touch(id, now);
                Some(Session {
                    id: id.to_owned(),
                    is_new: false,
                })
            }
            Some(_) => {
                store.remove(id);
                log::debug!(event = "session_expired", session = &id[..8]; "session expired after {} s idle", self.timeout.as_secs());
                None
            }
            None => None,
        }
    }

    /// The session to write a cart to: the live one the request presents, or a new one —
    /// refused when the store is full of live sessions.
    pub fn find_or_create(&self, presented: Option<&str>) -> Result<Session, SessionsFull> {
        if let Some(session) = self.find(presented) {
            return Ok(session);
        }
        let now = Instant::now();
        let mut store = self.lock();
        let mut id = new_id();
        while store.sessions.contains_key(&id) {
            id = new_id();
        }
        store.insert(id.clone(), now, self.capacity, self.timeout)?;
        Ok(Session { id, is_new: true })
    }

    /// Runs `f` on the session's cart. A session that expired since it was found (its idle
    /// timeout ran out during the request) is recreated under the same id if there is room;
    /// otherwise `f` runs on an empty cart that is not kept, and the loss is logged.
    pub fn with_cart<R>(&self, session: &Session, f: impl FnOnce(&mut Cart) -> R) -> R {
        let now = Instant::now();
        let mut store = self.lock();
        if !store.sessions.contains_key(&session.id)
            && store
                .insert(session.id.clone(), now, self.capacity, self.timeout)
                .is_err()
        {
            drop(store);
            log::warn!(event = "cart_not_kept", session = session.tag(); "a session expired during its request and the store is full: its cart change is not kept");
            return f(&mut Cart::default());
        }
        store.touch(&session.id, now);
        let entry = store.sessions.get_mut(&session.id).expect("inserted above");
        f(&mut entry.cart)
    }

    /// A copy of the session's cart (empty when the session is gone).
    pub fn cart(&self, session: &Session) -> Cart {
        self.lock()
            .sessions
            .get(&session.id)
            .map(|e| e.cart.clone())
            .unwrap_or_default()
    }

    /// Forgets sessions idle for the timeout; returns how many.
    pub fn prune_expired(&self) -> usize {
        let now = Instant::now();
        let mut store = self.lock();
        let mut pruned = 0;
        while store.prune_oldest(now, self.timeout) {
            pruned += 1;
        }
        pruned
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Prunes expired sessions every [`PRUNE_INTERVAL`], forever.
    pub async fn prune_periodically(self) {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pruned = self.prune_expired();
            if pruned > 0 {
                log::debug!(event = "sessions_pruned", pruned = pruned, active = self.len(); "forgot {pruned} expired session(s)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            presented_id(&cookie("theme=dark; shop_session=abc ; x=1")),
            Some("abc")
        );
        assert_eq!(presented_id(&cookie("shop_session_old=abc")), None);
        assert_eq!(presented_id(&HeaderMap::new()), None);
    }

    #[test]
    fn only_a_cart_write_creates_a_session_and_a_known_one_is_kept() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        assert_eq!(sessions.find(None), None);
        assert_eq!(sessions.len(), 0);
        let first = sessions.find_or_create(None).unwrap();
        assert!(first.is_new);
        assert!(is_valid_id(&first.id), "{}", first.id);
        let again = sessions.find_or_create(Some(&first.id)).unwrap();
        assert_eq!(
            again,
            Session {
                id: first.id.clone(),
                is_new: false
            }
        );
        assert_eq!(sessions.find(Some(&first.id)), Some(again));
        for bogus in ["", "nope", &"0".repeat(32), &first.id.to_uppercase()] {
            assert_eq!(sessions.find(Some(bogus)), None, "{bogus}");
            let other = sessions.find_or_create(Some(bogus)).unwrap();
            assert!(other.is_new && other.id != first.id, "{bogus}");
        }
        assert!(first
            .set_cookie()
            .ends_with("; Path=/; HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn an_idle_session_expires_with_its_cart() {
        let sessions = Sessions::new(Duration::from_millis(50), 10);
        let session = sessions.find_or_create(None).unwrap();
        sessions.with_cart(&session, |cart| cart.add(1, 1)).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.find(Some(&session.id)), None);
        let next = sessions.find_or_create(Some(&session.id)).unwrap();
        assert!(next.is_new);
        assert_ne!(next.id, session.id);
        assert!(sessions.cart(&next).lines().is_empty());
        assert!(sessions.cart(&session).lines().is_empty());
    }

    #[test]
    fn pruning_forgets_only_idle_sessions() {
        let sessions = Sessions::new(Duration::from_millis(300), 10);
        let old = sessions.find_or_create(None).unwrap();
        let _older = sessions.find_or_create(None).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let fresh = sessions.find_or_create(None).unwrap();
        // Created after the others went idle: it stays.
        assert_eq!(sessions.prune_expired(), 2);
        assert_eq!(sessions.len(), 1);
        assert!(sessions.find(Some(&fresh.id)).is_some());
        assert!(sessions.find(Some(&old.id)).is_none());
    }

    #[test]
    fn a_full_store_refuses_new_sessions_and_keeps_every_live_cart() {
        let sessions = Sessions::new(Duration::from_secs(60), 3);
        let carts: Vec<Session> = (0..3)
            .map(|n| {
                let s = sessions.find_or_create(None).unwrap();
                sessions.with_cart(&s, |cart| cart.add(n + 1, 1)).unwrap();
                s
            })
            .collect();
        assert_eq!(sessions.find_or_create(None), Err(SessionsFull));
        assert_eq!(sessions.len(), 3);
        for (n, s) in carts.iter().enumerate() {
            let kept = sessions.find(Some(&s.id)).expect("still there");
            assert_eq!(sessions.cart(&kept).lines()[0].product_id, n as i32 + 1);
        }
    }

    #[test]
    fn a_full_store_makes_room_by_forgetting_expired_sessions() {
        let sessions = Sessions::new(Duration::from_millis(100), 2);
        let old = sessions.find_or_create(None).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let live = sessions.find_or_create(None).unwrap();
        let newcomer = sessions.find_or_create(None).unwrap();
        assert!(newcomer.is_new);
        assert_eq!(sessions.len(), 2);
        assert!(sessions.find(Some(&old.id)).is_none());
        assert!(sessions.find(Some(&live.id)).is_some());
    }

    #[test]
    fn a_session_that_expired_mid_request_still_gets_its_cart_when_there_is_room() {
        let sessions = Sessions::new(Duration::from_millis(50), 2);
        let a = sessions.find_or_create(None).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.prune_expired(), 1);
        sessions.with_cart(&a, |cart| cart.add(7, 2)).unwrap();
        assert_eq!(sessions.cart(&a).units(), 2);
        assert_eq!(sessions.len(), 1);
    }
}
