//! Checking a password against a stored Argon2 hash in memory the caller lends.
//!
//! `Argon2::verify_password` allocates the hash's memory (4 MiB for the shop's hashes) on every
//! check. glibc then raises its mmap threshold to that size, so the next blocks come from the
//! checking thread's malloc arena and stay there: under a login flood the API reached 459 MiB
//! with only two checks at a time (bench/README.md). The login gate instead keeps one
//! [`HashMemory`] per hasher and lends it to each check, so the checks' memory is
//! `hashers × 4 MiB` whatever the allocator does.

use argon2::{
    password_hash::{Output, PasswordHash},
    Algorithm, Argon2, Block, Params, Version,
};

/// The memory one check may use, in Argon2 blocks of 1 KiB: the shop's hashes (`m=4096`). A
/// stored hash that asks for more does not match (and is logged).
pub const HASH_MEMORY_BLOCKS: usize = 4096;

/// The memory of one password check, reused from check to check.
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    pub fn new() -> Self {
        Self(vec![Block::default(); HASH_MEMORY_BLOCKS])
    }
}

/// Whether `password` matches the PHC string `stored`, computed in `memory`. A hash that does
/// not parse, or needs more memory than [`HASH_MEMORY_BLOCKS`], never matches.
pub fn verify(password: &[u8], stored: &str, memory: &mut HashMemory) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        log::error!(event = "password_hash_invalid"; "a stored password hash does not parse");
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm),
        hash.version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        log::error!(event = "password_hash_invalid"; "a stored password hash has parameters Argon2 refuses");
        return false;
    };
    let blocks = params.block_count();
    let Some(memory) = memory.0.get_mut(..blocks) else {
        log::error!(
            event = "password_hash_too_large", blocks = blocks;
            "a stored password hash needs {blocks} KiB, more than the {HASH_MEMORY_BLOCKS} KiB a check may use"
        );
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut *memory)
            .map_err(Into::into)
    })
    // `Output`'s equality is constant-time.
    .is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use argon2::{password_hash::SaltString, PasswordHasher};

    use super::*;

    /// alice@example.com's hash as the migrations seed it (password `alertlab-demo`).
    const ALICE: &str = "$argon2id$v=19$m=4096,t=2,p=1$AZevakyViaGrxplGHcaO3g$9OEGhtCkmD98I3OLPPTWuGGmVSGPubmQjeq3xK2mPGw";

    #[test]
    fn the_right_password_matches_and_others_do_not() {
        let mut memory = HashMemory::new();
        assert!(verify(b"alertlab-demo", ALICE, &mut memory));
        assert!(!verify(b"alertlab-demO", ALICE, &mut memory));
        assert!(!verify(b"", ALICE, &mut memory));
        // The lent memory is reused: the same answers again.
        assert!(verify(b"alertlab-demo", ALICE, &mut memory));
    }

    #[test]
    fn it_agrees_with_argon2s_own_verification() {
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let mut memory = HashMemory::new();
        for (algorithm, m, t, p) in [
            (Algorithm::Argon2id, 4096, 2, 1),
            (Algorithm::Argon2i, 1024, 3, 2),
            (Algorithm::Argon2d, 64, 1, 1),
        ] {
            let params = Params::new(m, t, p, None).unwrap();
            let hashed = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"secret", &salt)
                .unwrap()
                .to_string();
            assert!(verify(b"secret", &hashed, &mut memory), "{hashed}");
            assert!(!verify(b"Secret", &hashed, &mut memory), "{hashed}");
        }
    }

    #[test]
    fn a_hash_needing_more_memory_or_malformed_never_matches() {
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let params = Params::new(8192, 1, 1, None).unwrap();
        let bigger = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        let mut memory = HashMemory::new();
        assert!(!verify(b"secret", &bigger, &mut memory));
        assert!(!verify(b"secret", "not a hash", &mut memory));
        assert!(!verify(
            b"alertlab-demo",
            &ALICE.replace("m=4096", "m=4097"),
            &mut memory
        ));
    }
}
