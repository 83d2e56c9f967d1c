//! Visitor sessions: a random id in the `shop_session` cookie names an in-memory cart.
//!
//! A session lives until it has been idle for the session timeout; an expired, unknown or
//! malformed id gets a new session. The store holds at most [`MAX_SESSIONS`]: when full, the
//! least recently seen session is evicted, so a flood of cookie-less clients cannot grow
//! memory. Sessions are kept in recency order, which makes pruning and eviction cheap.

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
/// Most sessions held at once. A session costs about 0.2 KiB and more once eviction churns
/// the store: a cookie-less flood took 100,000 sessions to 36–46 MiB of resident memory
/// (bench/README.md), this many stay well inside the services' 30 MB budget; the lab's
/// traffic keeps its cookies and needs a few hundred.
pub const MAX_SESSIONS: usize = 20_000;
/// How often expired sessions are pruned in the background.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// A session id: 128 random bits as lower-case hex.
const ID_LEN: usize = 32;

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

    fn insert(&mut self, id: String, now: Instant, capacity: usize) {
        while self.sessions.len() >= capacity.max(1) {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
            log::debug!(event = "session_evicted", session = &oldest[..8]; "session store full: evicted the least recently seen session");
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

    /// The live session the request presents (its idle clock restarted), or a new one.
    pub fn resolve(&self, presented: Option<&str>) -> Session {
        let now = Instant::now();
        let mut store = self.lock();
        if let Some(id) = presented.filter(|id| is_valid_id(id)) {
            match store.sessions.get(id) {
                Some(entry) if now.duration_since(entry.last_seen) < self.timeout => {
                    store.touch(id, now);
                    return Session {
                        id: id.to_owned(),
                        is_new: false,
                    };
                }
                Some(_) => {
                    store.remove(id);
                    log::debug!(event = "session_expired", session = &id[..8]; "session expired after {} s idle", self.timeout.as_secs());
                }
                None => {}
            }
        }
        let mut id = new_id();
        while store.sessions.contains_key(&id) {
            id = new_id();
        }
        store.insert(id.clone(), now, self.capacity);
        Session { id, is_new: true }
    }

    /// Runs `f` on the session's cart. A session that vanished since it was resolved (evicted
    /// by a flood of new ones) is recreated under the same id, so the request still works.
    pub fn with_cart<R>(&self, session: &Session, f: impl FnOnce(&mut Cart) -> R) -> R {
        let now = Instant::now();
        let mut store = self.lock();
        if !store.sessions.contains_key(&session.id) {
            store.insert(session.id.clone(), now, self.capacity);
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
        while let Some((&seq, id)) = store.recency.first_key_value() {
            let expired = store
                .sessions
                .get(id)
                .is_none_or(|e| now.duration_since(e.last_seen) >= self.timeout);
            if !expired {
                break;
            }
            let id = id.clone();
            store.recency.remove(&seq);
            store.sessions.remove(&id);
            log::debug!(event = "session_expired", session = &id[..8]; "session expired after {} s idle", self.timeout.as_secs());
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
    fn a_known_session_is_kept_and_anything_else_gets_a_new_one() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let first = sessions.resolve(None);
        assert!(first.is_new);
        assert!(is_valid_id(&first.id), "{}", first.id);
        let again = sessions.resolve(Some(&first.id));
        assert_eq!(
            again,
            Session {
                id: first.id.clone(),
                is_new: false
            }
        );
        for bogus in ["", "nope", &"0".repeat(32), &first.id.to_uppercase()] {
            let other = sessions.resolve(Some(bogus));
            assert!(other.is_new && other.id != first.id, "{bogus}");
        }
        assert!(first
            .set_cookie()
            .ends_with("; Path=/; HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn an_idle_session_expires_with_its_cart() {
        let sessions = Sessions::new(Duration::from_millis(50), 10);
        let session = sessions.resolve(None);
        sessions.with_cart(&session, |cart| cart.add(1, 1)).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        let next = sessions.resolve(Some(&session.id));
        assert!(next.is_new);
        assert_ne!(next.id, session.id);
        assert!(sessions.cart(&next).lines().is_empty());
        assert!(sessions.cart(&session).lines().is_empty());
    }

    #[test]
    fn pruning_forgets_only_idle_sessions() {
        let sessions = Sessions::new(Duration::from_millis(300), 10);
        let old = sessions.resolve(None);
        let _older = sessions.resolve(None);
        std::thread::sleep(Duration::from_millis(400));
        let fresh = sessions.resolve(None);
        // Created after the others went idle: it stays.
        assert_eq!(sessions.prune_expired(), 2);
        assert_eq!(sessions.len(), 1);
        assert!(!sessions.resolve(Some(&fresh.id)).is_new);
        assert!(sessions.resolve(Some(&old.id)).is_new);
    }

    #[test]
    fn a_full_store_evicts_the_least_recently_seen() {
        let sessions = Sessions::new(Duration::from_secs(60), 3);
        let a = sessions.resolve(None);
        let b = sessions.resolve(None);
        let c = sessions.resolve(None);
        // `a` is seen again, so `b` is now the least recently seen.
        sessions.resolve(Some(&a.id));
        let d = sessions.resolve(None);
        assert_eq!(sessions.len(), 3);
        for kept in [&a, &c, &d] {
            assert!(!sessions.resolve(Some(&kept.id)).is_new);
        }
        assert_eq!(sessions.len(), 3);
        assert!(sessions.resolve(Some(&b.id)).is_new);
        assert_eq!(sessions.len(), 3);
    }

    #[test]
    fn a_session_evicted_mid_request_still_gets_its_cart() {
        let sessions = Sessions::new(Duration::from_secs(60), 1);
        let a = sessions.resolve(None);
        let _b = sessions.resolve(None);
        sessions.with_cart(&a, |cart| cart.add(7, 2)).unwrap();
        assert_eq!(sessions.cart(&a).units(), 2);
        assert_eq!(sessions.len(), 1);
    }
}
