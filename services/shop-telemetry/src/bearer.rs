//! Shared-secret bearer tokens between the lab's parts: the API's calls to the payment service
//! (`--payment-token-file`) and the operator's stock changes on the inventory (the fault
//! token). The token is read from a file (never a flag or an environment value, which `ps`
//! and the journal show), compared in constant time, and never printed: its `Debug` is
//! redacted, so settings can be logged.

use std::{fmt, fs, path::Path, sync::Arc};

use poem::Request;

/// Tokens shorter than this are refused at startup: a bearer token is the only thing between
/// a stranger and a refund or a stock change.
pub const MIN_TOKEN_LENGTH: usize = 16;

/// A secret bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Arc<str>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A bearer token, but not this one.
    Wrong,
}

impl BearerToken {
    /// Reads the token from the first line of `path`; `flag` names the setting in errors.
    pub fn from_file(flag: &str, path: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(path)
            .map_err(|err| format!("cannot read {flag} {}: {err}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(format!("{flag} {} is empty", path.display()));
        }
        Self::new(token).map_err(|err| format!("{flag} {}: {err}", path.display()))
    }

    /// A token from its text (tests, and tokens read elsewhere).
    pub fn new(token: &str) -> Result<Self, String> {
        if token.len() < MIN_TOKEN_LENGTH {
            return Err(format!(
                "the token must be at least {MIN_TOKEN_LENGTH} characters long"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Self(token.into()))
    }

    /// The token itself, to send it (`Authorization: Bearer <token>`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the request's `Authorization: Bearer` header against this token.
    pub fn check(&self, req: &Request) -> Result<(), TokenRejection> {
        let presented = presented_bearer(req).ok_or(TokenRejection::Missing)?;
        if constant_time_eq(presented.as_bytes(), self.0.as_bytes()) {
            Ok(())
        } else {
            Err(TokenRejection::Wrong)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn presented_bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn request(authorization: Option<&str>) -> Request {
        let mut builder = Request::builder();
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.finish()
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let token = BearerToken::new("s3cret-token-0123456789").unwrap();
        assert_eq!(
            token.check(&request(Some("Bearer s3cret-token-0123456789"))),
            Ok(())
        );
        assert_eq!(
            token.check(&request(Some("bearer s3cret-token-0123456789"))),
            Ok(())
        );
        for wrong in [
            "Bearer s3cret-token-012345678",
            "Bearer s3cret-token-01234567890",
            "Bearer S3cret-token-0123456789",
            "Basic s3cret-token-0123456789",
        ] {
            assert_ne!(token.check(&request(Some(wrong))), Ok(()), "{wrong}");
        }
        assert_eq!(
            token.check(&request(Some("Bearer x"))),
            Err(TokenRejection::Wrong)
        );
        assert_eq!(token.check(&request(None)), Err(TokenRejection::Missing));
        assert_eq!(
            token.check(&request(Some("Bearer "))),
            Err(TokenRejection::Missing)
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let token = BearerToken::new("s3cret-token-0123456789").unwrap();
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
    }

    #[test]
    fn token_files_are_read_from_their_first_line_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"  abcdefghijklmnop0123  \nignored\n")
            .unwrap();
        let token = BearerToken::from_file("--payment-token-file", &path).unwrap();
        assert_eq!(token.expose(), "abcdefghijklmnop0123");

        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            BearerToken::from_file("--payment-token-file", &path).unwrap_err(),
            format!("--payment-token-file {} is empty", path.display())
        );
        std::fs::write(&path, "short").unwrap();
        assert!(BearerToken::from_file("--payment-token-file", &path)
            .unwrap_err()
            .contains("at least 16 characters"));
        let missing = dir.path().join("missing");
        assert!(BearerToken::from_file("--payment-token-file", &missing)
            .unwrap_err()
            .starts_with(&format!(
                "cannot read --payment-token-file {}",
                missing.display()
            )));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
