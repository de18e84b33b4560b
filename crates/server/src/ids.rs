//! Identifiers in AWS's formats, from the operating system's random source.

use rand::rngs::OsRng;
use rand::Rng;

/// Characters of IAM unique IDs and access key IDs (base32, as AWS uses).
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters of secret access keys.
const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// A 12-digit account ID that does not start with 0.
pub fn account_id() -> String {
    let mut rng = OsRng;
    let first = rng.gen_range(1..=9u8);
    let rest: String = (0..11)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    format!("{first}{rest}")
}

/// An IAM user's unique ID: `AIDA` and 17 characters.
pub fn user_id() -> String {
    format!("AIDA{}", pick(BASE32, 17))
}

/// A long-term access key ID: `AKIA` and 16 characters.
pub fn access_key_id() -> String {
    format!("AKIA{}", pick(BASE32, 16))
}

/// A temporary access key ID: `ASIA` and 16 characters.
pub fn temporary_access_key_id() -> String {
    format!("ASIA{}", pick(BASE32, 16))
}

/// A session token: 64 random bytes, base64.
pub fn session_token() -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 64];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A 40-character secret access key (240 bits of entropy).
pub fn secret_access_key() -> String {
    pick(SECRET, 40)
}

/// A one-time password that satisfies the default password policy: 20
/// characters from an alphabet without look-alikes, plus a digit and a symbol.
pub fn one_time_password() -> String {
    let body = pick(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", 18);
    format!("{body}{}{}", pick(b"23456789", 1), pick(b"!#%+=", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let a = account_id();
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_digit()) && !a.starts_with('0'));
        assert!(user_id().starts_with("AIDA") && user_id().len() == 21);
        let k = access_key_id();
        assert!(k.starts_with("AKIA") && k.len() == 20);
        assert_eq!(secret_access_key().len(), 40);
        assert_ne!(secret_access_key(), secret_access_key());
        let p = one_time_password();
        assert_eq!(p.len(), 20);
        assert!(p.chars().any(|c| c.is_ascii_digit()));
    }
}
