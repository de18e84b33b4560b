//! A string that must never appear in logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string (session token, secret access key, data-channel token).
///
/// It serializes as the plain string, because the peer needs the value, but
/// its `Debug` output is `***` so that logging a message that carries one
/// does not leak it. Equality is compared in constant time for equal
/// lengths, so comparing a presented token against the expected one does
/// not reveal how many leading bytes matched.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value. Call this only where the value is needed,
    /// never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper and returns the secret value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        // Fold every byte difference in, so the time taken does not depend
        // on where the first mismatch is.
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{s:?}"), "***");
        let wrapped = Some(s);
        assert!(!format!("{wrapped:?}").contains("wJalr"));
    }

    #[test]
    fn serializes_as_plain_string() {
        let s = Secret::new("tok");
        assert_eq!(serde_json::to_string(&s).ok().as_deref(), Some("\"tok\""));
        let back: Secret = serde_json::from_str("\"tok\"").unwrap_or_default();
        assert_eq!(back.expose(), "tok");
    }

    #[test]
    fn equality() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
        assert!(Secret::default().is_empty());
    }
}
