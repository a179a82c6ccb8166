//! The one type a secret setting has.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret setting. It cannot be printed: `Debug`, `Display` and `Serialize` all redact it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// `bytes` random bytes from the OS, base64: the standard alphabet, or the URL-safe one
    /// without padding for values that go into a URL and must avoid `/` (RDS passwords), so
    /// nothing in them needs percent-encoding.
    pub fn random_base64(bytes: usize, url_safe: bool) -> Self {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as URL_SAFE};
        use rand::RngCore;
        let mut buf = vec![0u8; bytes];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        Self(if url_safe { URL_SAFE.encode(buf) } else { STANDARD.encode(buf) })
    }

    /// The value itself, for the one place that needs it (a client, a key derivation).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}
