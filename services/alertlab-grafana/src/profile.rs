//! The timing profiles of the alert rules, the same transformation as `grafana/profile.nix`.
//!
//! `grafana/alert-rules.json` is written once, in the `demo` timing (30 s group interval, 30 s or
//! longer pending periods). The profiles are:
//!
//! - `demo`: the file unchanged.
//! - `fast`: every group's `interval` becomes `"10s"`, and every rule's `for` (when present)
//!   becomes `fast_pending(for)` seconds, written as `"<n>s"`.
//!
//! `fast_pending(0) = 0`; otherwise it is a third of the demo pending period rounded **up** to a
//! multiple of 10 s: `10 * ceil(seconds / 30)`, which is at least 10 s. So 30s → 10s, 1m → 20s,
//! 1m30s → 30s, 2m → 40s, 5m → 100s. Nothing else changes (query windows, thresholds and
//! relative time ranges are the same in both profiles).

use std::{fmt, str::FromStr};

use serde_json::Value;

use crate::duration::parse_profile_duration;

/// The group interval of the fast profile.
pub const FAST_INTERVAL: &str = "10s";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Demo,
    Fast,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Demo, Profile::Fast];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Demo => "demo",
            Profile::Fast => "fast",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "demo" => Ok(Profile::Demo),
            "fast" => Ok(Profile::Fast),
            other => Err(ProfileError::UnknownProfile(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("unknown profile {0:?}; expected \"demo\" or \"fast\"")]
    UnknownProfile(String),
    #[error("the rules file has no \"groups\" list")]
    NoGroups,
    #[error("{0}: expected a JSON object")]
    NotAnObject(String),
    #[error("{path}: unsupported duration {value}; use e.g. 30s, 1m, 1m30s")]
    BadDuration { path: String, value: String },
}

/// The pending period of the fast profile for a demo pending period, in seconds.
pub fn fast_pending(demo_seconds: u64) -> u64 {
    demo_seconds.div_ceil(30) * 10
}

/// Applies `profile` to the parsed `grafana/alert-rules.json`.
pub fn apply(rules: &Value, profile: Profile) -> Result<Value, ProfileError> {
    let mut out = rules.clone();
    if profile == Profile::Demo {
        return Ok(out);
    }
    let groups = out
        .get_mut("groups")
        .and_then(Value::as_array_mut)
        .ok_or(ProfileError::NoGroups)?;
    for (g, group) in groups.iter_mut().enumerate() {
        let group = group
            .as_object_mut()
            .ok_or_else(|| ProfileError::NotAnObject(format!("groups[{g}]")))?;
        group.insert("interval".into(), Value::from(FAST_INTERVAL));
        let Some(rules) = group.get_mut("rules") else {
            continue;
        };
        let rules = rules
            .as_array_mut()
            .ok_or_else(|| ProfileError::NotAnObject(format!("groups[{g}].rules")))?;
        for (r, rule) in rules.iter_mut().enumerate() {
            let rule = rule
                .as_object_mut()
                .ok_or_else(|| ProfileError::NotAnObject(format!("groups[{g}].rules[{r}]")))?;
            let Some(pending) = rule.get("for") else {
                continue;
            };
            let seconds = pending
                .as_str()
                .and_then(parse_profile_duration)
                .ok_or_else(|| ProfileError::BadDuration {
                    path: format!("groups[{g}].rules[{r}].for"),
                    value: pending.to_string(),
                })?;
            rule.insert(
                "for".into(),
                Value::from(format!("{}s", fast_pending(seconds))),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fast_pending_mapping() {
        let cases = [
            (0, 0),
            (1, 10),
            (10, 10),
            (30, 10),
            (31, 20),
            (60, 20),
            (90, 30),
            (120, 40),
            (300, 100),
        ];
        for (demo, fast) in cases {
            assert_eq!(fast_pending(demo), fast, "demo {demo}s");
        }
    }

    #[test]
    fn fast_rewrites_intervals_and_pending_periods_only() {
        let rules = json!({
            "apiVersion": 1,
            "groups": [
                {"name": "a", "interval": "30s", "rules": [
                    {"uid": "x", "for": "30s", "data": [{"relativeTimeRange": {"from": 600, "to": 0}}]},
                    {"uid": "y", "for": "1m"},
                    {"uid": "z"}
                ]},
                {"name": "b", "interval": "1m"}
            ]
        });
        let fast = apply(&rules, Profile::Fast).unwrap();
        assert_eq!(
            fast,
            json!({
                "apiVersion": 1,
                "groups": [
                    {"name": "a", "interval": "10s", "rules": [
                        {"uid": "x", "for": "10s", "data": [{"relativeTimeRange": {"from": 600, "to": 0}}]},
                        {"uid": "y", "for": "20s"},
                        {"uid": "z"}
                    ]},
                    {"name": "b", "interval": "10s"}
                ]
            })
        );
        assert_eq!(apply(&rules, Profile::Demo).unwrap(), rules);
    }

    #[test]
    fn errors_are_explicit() {
        assert_eq!(
            "slow".parse::<Profile>(),
            Err(ProfileError::UnknownProfile("slow".into()))
        );
        let bad = json!({"groups": [{"rules": [{"for": "1.5m"}]}]});
        assert_eq!(
            apply(&bad, Profile::Fast).unwrap_err().to_string(),
            "groups[0].rules[0].for: unsupported duration \"1.5m\"; use e.g. 30s, 1m, 1m30s"
        );
        assert_eq!(
            apply(&json!({}), Profile::Fast),
            Err(ProfileError::NoGroups)
        );
    }
}
