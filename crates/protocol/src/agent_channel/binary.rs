//! Bytes carried as base64 inside JSON messages.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Opaque bytes, base64 (standard alphabet, padded) on the wire.
///
/// `Debug` shows only the length: these are terminal I/O and file
/// contents, which never belong in logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Binary(pub Vec<u8>);

impl Binary {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the wrapper and returns the bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Binary {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}

impl From<&[u8]> for Binary {
    fn from(value: &[u8]) -> Self {
        Self(value.to_vec())
    }
}

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Binary)
            .map_err(|e| D::Error::custom(format!("invalid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_on_the_wire_and_length_in_debug() {
        let b = Binary(b"hi\n".to_vec());
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGkK\"");
        assert_eq!(format!("{b:?}"), "<3 bytes>");
        let back: Binary = serde_json::from_str("\"aGkK\"").unwrap();
        assert_eq!(back, b);
        assert!(serde_json::from_str::<Binary>("\"not base64!\"").is_err());
    }
}
