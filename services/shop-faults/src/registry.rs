use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::FaultAccess;

/// The longest a fault may last: a forgotten fault still ends within the day.
pub const MAX_DURATION_SECONDS: u64 = 24 * 60 * 60;
/// The most latency a fault may add, per request.
pub const MAX_LATENCY_MS: f64 = 60_000.0;
/// The most faults in force at once. Kinds and methods are validated, so a service reaches
/// at most kinds × (methods + 1) distinct faults (20 for payment); this bounds the list
/// whatever a caller sends.
pub const MAX_ACTIVE_FAULTS: usize = 32;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FaultKind {
    /// `value` in 0..=1: that share of business requests is answered 500.
    ErrorRate,
    /// `value` in milliseconds is added to every business request.
    Latency,
    /// Payment only. `value` in 0..=1: that share of payments fails as if the processor for
    /// `method` (or every method when absent) were unavailable.
    DeclineRate,
    /// Inventory only. Automatic restocking stops; `value` is ignored.
    RestockPaused,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::Latency => "latency",
            Self::DeclineRate => "decline_rate",
            Self::RestockPaused => "restock_paused",
        }
    }
}

/// A fault to set.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Meaning depends on `kind`: a share in 0..=1, or milliseconds for `latency`.
    #[oai(default)]
    pub value: f64,
    /// `decline_rate` only: the payment method the fault hits; absent means every method.
    pub method: Option<String>,
    /// How long the fault lasts before it reverts by itself, 1..=86400.
    pub duration_seconds: u64,
}

/// A fault in force.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ActiveFault {
    pub kind: FaultKind,
    pub value: f64,
    pub method: Option<String>,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Seconds until it reverts by itself.
    pub remaining_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("fault kind `{kind}` is not supported by this service; supported kinds: {supported}")]
    UnsupportedKind {
        kind: &'static str,
        supported: String,
    },
    #[error("`duration_seconds` must be between 1 and {MAX_DURATION_SECONDS}, got {0}")]
    BadDuration(u64),
    #[error("`value` for `{kind}` must be {expected}, got {value}")]
    BadValue {
        kind: &'static str,
        expected: &'static str,
        value: f64,
    },
    #[error("`method` is only meaningful for `decline_rate`")]
    UnexpectedMethod,
    #[error("`method` must be one of {known}, got `{given}`")]
    UnknownMethod { given: String, known: String },
    #[error("at most {MAX_ACTIVE_FAULTS} faults can be in force at once; clear some first")]
    TooManyFaults,
}

/// The faults of one service instance.
#[derive(Clone)]
pub struct Faults {
    supported: &'static [FaultKind],
    /// The payment methods a `decline_rate` fault may name.
    methods: &'static [&'static str],
    access: Arc<FaultAccess>,
    active: Arc<Mutex<Vec<Stored>>>,
}

#[derive(Debug, Clone)]
struct Stored {
    kind: FaultKind,
    value: f64,
    method: Option<String>,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Faults {
    pub fn new(supported: &'static [FaultKind], access: FaultAccess) -> Self {
        Self {
            supported,
            methods: &[],
            access: Arc::new(access),
            active: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The payment methods a `decline_rate` fault may name (any other is refused).
    pub fn with_methods(mut self, methods: &'static [&'static str]) -> Self {
        self.methods = methods;
        self
    }

    pub fn access(&self) -> &FaultAccess {
        &self.access
    }

    pub fn supported(&self) -> &'static [FaultKind] {
        self.supported
    }

    /// Sets a fault, replacing one of the same kind and method.
    pub fn set(&self, spec: FaultSpec) -> Result<ActiveFault, FaultError> {
        self.validate(&spec)?;
        let now = Utc::now();
        let stored = Stored {
            kind: spec.kind,
            value: spec.value,
            method: spec.method,
            started_at: now,
            // Validated above: at most a day, so the conversion cannot overflow.
            expires_at: now + chrono::Duration::seconds(spec.duration_seconds as i64),
        };
        let mut active = self.lock_pruned(now);
        active.retain(|f| !(f.kind == stored.kind && f.method == stored.method));
        if active.len() >= MAX_ACTIVE_FAULTS {
            return Err(FaultError::TooManyFaults);
        }
        active.push(stored.clone());
        log::warn!(
            event = "fault_started", kind = stored.kind.as_str(), value = stored.value,
            method = stored.method.as_deref().unwrap_or("*"),
            duration_seconds = spec.duration_seconds;
            "fault injection started: {} = {}", stored.kind.as_str(), stored.value
        );
        Ok(to_active(&stored, now))
    }

    /// Clears faults (all, or those of one kind); returns how many were cleared.
    pub fn clear(&self, kind: Option<FaultKind>) -> usize {
        let mut active = self.lock_pruned(Utc::now());
        let before = active.len();
        active.retain(|f| kind.is_some_and(|k| k != f.kind));
        let cleared = before - active.len();
        if cleared > 0 {
            log::info!(event = "fault_cleared", cleared = cleared; "cleared {cleared} fault(s)");
        }
        cleared
    }

    pub fn list(&self) -> Vec<ActiveFault> {
        let now = Utc::now();
        self.lock_pruned(now)
            .iter()
            .map(|f| to_active(f, now))
            .collect()
    }

    /// The share of business requests to fail (the largest of the active error-rate faults).
    pub fn error_rate(&self) -> f64 {
        self.max_value(|f| f.kind == FaultKind::ErrorRate)
            .unwrap_or(0.0)
    }

    /// Latency to add to a business request.
    pub fn added_latency(&self) -> Duration {
        let ms = self
            .max_value(|f| f.kind == FaultKind::Latency)
            .unwrap_or(0.0);
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// The injected failure share for payments by `method`.
    pub fn decline_rate(&self, method: &str) -> f64 {
        self.max_value(|f| {
            f.kind == FaultKind::DeclineRate && f.method.as_deref().is_none_or(|m| m == method)
        })
        .unwrap_or(0.0)
    }

    pub fn is_active(&self, kind: FaultKind) -> bool {
        self.max_value(|f| f.kind == kind).is_some()
    }

    fn max_value(&self, matches: impl Fn(&Stored) -> bool) -> Option<f64> {
        self.lock_pruned(Utc::now())
            .iter()
            .filter(|f| matches(f))
            .map(|f| f.value)
            .reduce(f64::max)
    }

    fn lock_pruned(&self, now: DateTime<Utc>) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|f| {
            let live = f.expires_at > now;
            if !live {
                log::info!(
                    event = "fault_expired", kind = f.kind.as_str();
                    "fault injection ended: {} expired", f.kind.as_str()
                );
            }
            live
        });
        active
    }

    fn validate(&self, spec: &FaultSpec) -> Result<(), FaultError> {
        if !self.supported.contains(&spec.kind) {
            return Err(FaultError::UnsupportedKind {
                kind: spec.kind.as_str(),
                supported: self
                    .supported
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if spec.duration_seconds == 0 || spec.duration_seconds > MAX_DURATION_SECONDS {
            return Err(FaultError::BadDuration(spec.duration_seconds));
        }
        let share = |value: f64| (0.0..=1.0).contains(&value);
        let (ok, expected) = match spec.kind {
            FaultKind::ErrorRate | FaultKind::DeclineRate => {
                (share(spec.value), "a share between 0 and 1")
            }
            FaultKind::Latency => (
                (0.0..=MAX_LATENCY_MS).contains(&spec.value),
                "milliseconds between 0 and 60000",
            ),
            FaultKind::RestockPaused => (spec.value.is_finite(), "a number (it is ignored)"),
        };
        if !ok {
            return Err(FaultError::BadValue {
                kind: spec.kind.as_str(),
                expected,
                value: spec.value,
            });
        }
        match (&spec.method, spec.kind) {
            (None, _) => Ok(()),
            (Some(_), kind) if kind != FaultKind::DeclineRate => Err(FaultError::UnexpectedMethod),
            (Some(m), _) if self.methods.contains(&m.as_str()) => Ok(()),
            (Some(m), _) => Err(FaultError::UnknownMethod {
                given: m.chars().take(40).collect(),
                known: if self.methods.is_empty() {
                    "(none: this service names no methods)".into()
                } else {
                    self.methods.join(", ")
                },
            }),
        }
    }
}

fn to_active(f: &Stored, now: DateTime<Utc>) -> ActiveFault {
    ActiveFault {
        kind: f.kind,
        value: f.value,
        method: f.method.clone(),
        started_at: f.started_at,
        expires_at: f.expires_at,
        remaining_seconds: ((f.expires_at - now).num_milliseconds().max(0) as f64) / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[FaultKind] = &[
        FaultKind::ErrorRate,
        FaultKind::Latency,
        FaultKind::DeclineRate,
        FaultKind::RestockPaused,
    ];

    fn spec(kind: FaultKind, value: f64, seconds: u64) -> FaultSpec {
        FaultSpec {
            kind,
            value,
            method: None,
            duration_seconds: seconds,
        }
    }

    #[test]
    fn a_fault_applies_until_it_expires() {
        let faults = Faults::new(ALL, FaultAccess::default());
        faults.set(spec(FaultKind::ErrorRate, 0.5, 1)).unwrap();
        assert_eq!(faults.error_rate(), 0.5);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(faults.error_rate(), 0.0);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn setting_the_same_kind_again_replaces_it() {
        let faults = Faults::new(ALL, FaultAccess::default());
        faults.set(spec(FaultKind::Latency, 100.0, 60)).unwrap();
        faults.set(spec(FaultKind::Latency, 1500.0, 60)).unwrap();
        assert_eq!(faults.list().len(), 1);
        assert_eq!(faults.added_latency(), Duration::from_millis(1500));
    }

    const METHODS: &[&str] = &["card", "paypal"];

    #[test]
    fn decline_rate_applies_to_its_method_or_to_all() {
        let faults = Faults::new(ALL, FaultAccess::default()).with_methods(METHODS);
        let mut card = spec(FaultKind::DeclineRate, 1.0, 60);
        card.method = Some("card".into());
        faults.set(card).unwrap();
        assert_eq!(faults.decline_rate("card"), 1.0);
        assert_eq!(faults.decline_rate("paypal"), 0.0);
        faults.set(spec(FaultKind::DeclineRate, 0.25, 60)).unwrap();
        assert_eq!(faults.decline_rate("paypal"), 0.25);
        assert_eq!(faults.decline_rate("card"), 1.0);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let faults = Faults::new(
            &[FaultKind::ErrorRate, FaultKind::Latency],
            FaultAccess::default(),
        );
        let err = faults
            .set(spec(FaultKind::DeclineRate, 1.0, 60))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("supported kinds: error_rate, latency"),
            "{err}"
        );
        assert_eq!(
            faults.set(spec(FaultKind::ErrorRate, 1.5, 60)),
            Err(FaultError::BadValue {
                kind: "error_rate",
                expected: "a share between 0 and 1",
                value: 1.5
            })
        );
        assert_eq!(
            faults.set(spec(FaultKind::ErrorRate, 0.5, 0)),
            Err(FaultError::BadDuration(0))
        );
        assert!(faults.set(spec(FaultKind::Latency, -1.0, 10)).is_err());
        let mut with_method = spec(FaultKind::ErrorRate, 0.5, 10);
        with_method.method = Some("card".into());
        assert_eq!(faults.set(with_method), Err(FaultError::UnexpectedMethod));
        assert!(faults.list().is_empty());
    }

    #[test]
    fn decline_rate_methods_are_checked_so_the_list_stays_bounded() {
        let faults = Faults::new(ALL, FaultAccess::default()).with_methods(METHODS);
        for n in 0..1000 {
            let mut fault = spec(FaultKind::DeclineRate, 1.0, 60);
            fault.method = Some(format!("method-{n}"));
            assert_eq!(
                faults.set(fault),
                Err(FaultError::UnknownMethod {
                    given: format!("method-{n}"),
                    known: "card, paypal".into()
                })
            );
        }
        assert!(faults.list().is_empty());
        for method in ["card", "paypal", "card"] {
            let mut fault = spec(FaultKind::DeclineRate, 1.0, 60);
            fault.method = Some(method.into());
            faults.set(fault).unwrap();
        }
        assert_eq!(faults.list().len(), 2);
    }

    #[test]
    fn no_more_than_the_cap_of_faults_is_kept() {
        static MANY: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            (0..MAX_ACTIVE_FAULTS + 5)
                .map(|n| &*Box::leak(format!("m{n}").into_boxed_str()))
                .collect()
        });
        let faults = Faults::new(ALL, FaultAccess::default()).with_methods(MANY.as_slice());
        let mut refused = 0;
        for method in MANY.iter() {
            let mut fault = spec(FaultKind::DeclineRate, 1.0, 60);
            fault.method = Some((*method).into());
            if faults.set(fault) == Err(FaultError::TooManyFaults) {
                refused += 1;
            }
        }
        assert_eq!(faults.list().len(), MAX_ACTIVE_FAULTS);
        assert_eq!(refused, 5);
    }

    #[test]
    fn clear_removes_one_kind_or_all() {
        let faults = Faults::new(ALL, FaultAccess::default());
        faults.set(spec(FaultKind::ErrorRate, 0.5, 60)).unwrap();
        faults.set(spec(FaultKind::Latency, 10.0, 60)).unwrap();
        assert_eq!(faults.clear(Some(FaultKind::Latency)), 1);
        assert_eq!(faults.list().len(), 1);
        assert_eq!(faults.clear(None), 1);
        assert!(faults.list().is_empty());
    }
}
