//! Signing-key derivation and the final signature.
//!
//! The derived key (`kSigning`) depends only on the secret, the scope date,
//! the region and the service, so it is the natural unit of caching: the
//! server keeps one per (access key, date, region, service) and never needs
//! the secret again that day.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this constructor cannot fail; the
    // fallback keeps the function total without an `expect`.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// The credential scope a signature is bound to: `date/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    /// The scope date, `YYYYMMDD`.
    pub date: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The service signing name, e.g. `iam`.
    pub service: String,
}

impl CredentialScope {
    /// Creates a scope from its parts.
    pub fn new(
        date: impl Into<String>,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        CredentialScope {
            date: date.into(),
            region: region.into(),
            service: service.into(),
        }
    }
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// A derived SigV4 signing key (`kSigning`) for one secret and scope.
///
/// Cheap to copy and safe to cache: it cannot be turned back into the secret
/// and is only valid for its scope's day, region and service. `Debug` does
/// not print it.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Derives the key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    pub fn derive(secret_access_key: &str, scope: &CredentialScope) -> Self {
        let mut k_secret = Vec::with_capacity(4 + secret_access_key.len());
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret_access_key.as_bytes());
        let k_date = hmac(&k_secret, scope.date.as_bytes());
        let k_region = hmac(&k_date, scope.region.as_bytes());
        let k_service = hmac(&k_region, scope.service.as_bytes());
        SigningKey(hmac(&k_service, b"aws4_request"))
    }

    /// Wraps a key derived elsewhere (for example, loaded from a cache).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SigningKey(bytes)
    }

    /// The raw key bytes, for a cache that stores them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The signature of `string_to_sign` under this key.
    pub fn sign(&self, string_to_sign: &str) -> [u8; 32] {
        hmac(&self.0, string_to_sign.as_bytes())
    }

    /// Whether `signature_hex` is this key's signature of `string_to_sign`.
    ///
    /// The comparison runs in constant time so that response timing does not
    /// reveal how many leading bytes of a forged signature were right.
    /// Upper- or lower-case hex is accepted; anything else never matches.
    pub fn verify(&self, string_to_sign: &str, signature_hex: &str) -> bool {
        let mut provided = [0u8; 32];
        if hex::decode_to_slice(signature_hex, &mut provided).is_err() {
            return false;
        }
        self.sign(string_to_sign).ct_eq(&provided).into()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example in AWS's SigV4 documentation (IAM ListUsers).
    #[test]
    fn derives_documented_key() {
        let key = SigningKey::derive(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &CredentialScope::new("20150830", "us-east-1", "iam"),
        );
        assert_eq!(
            hex::encode(key.as_bytes()),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn verify_rejects_bad_hex() {
        let key = SigningKey::from_bytes([7; 32]);
        let sig = hex::encode(key.sign("x"));
        assert!(key.verify("x", &sig));
        assert!(key.verify("x", &sig.to_uppercase()));
        assert!(!key.verify("y", &sig));
        assert!(!key.verify("x", &sig[..62]));
        assert!(!key.verify("x", "zz"));
        assert!(!key.verify("x", ""));
    }
}
