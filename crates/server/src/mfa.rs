//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s steps) for
//! virtual MFA devices.

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
const STEP: u64 = 30;

/// A fresh random secret, base32 (160 bits, as RFC 4226 recommends).
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_base32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_string()).to_bytes().ok()?;
    // `new_unchecked`: secrets created before the 128-bit minimum of the
    // checked constructor still verify; new ones are 160 bits.
    Some(TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, bytes))
}

/// The time step a valid code belongs to (the current one or either
/// neighbour, for clock drift), or `None` if the code is wrong.
pub fn verify(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_base32)?;
    let step = unix_seconds / STEP;
    for candidate in [step, step.saturating_sub(1), step + 1] {
        if totp.generate(candidate * STEP) == code {
            return i64::try_from(candidate).ok();
        }
    }
    None
}

/// The code for a time (for tests and device set-up checks).
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> Option<String> {
    totp(secret_base32).map(|t| t.generate(unix_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s:
        // 94287082 (8 digits); the 6-digit code is its last six digits.
        let secret = totp_rs::Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_at(&secret, 59).as_deref(), Some("287082"));
        assert_eq!(verify(&secret, "287082", 59), Some(1));
        assert_eq!(
            verify(&secret, "287082", 59 + 30),
            Some(1),
            "previous step accepted"
        );
        assert_eq!(verify(&secret, "287082", 59 + 90), None, "too old");
        assert_eq!(verify(&secret, "287083", 59), None);
        assert_eq!(verify(&secret, "28708", 59), None);
        assert_eq!(verify(&secret, "abcdef", 59), None);
        assert_eq!(verify("not base32!", "287082", 59), None);
    }

    #[test]
    fn fresh_secrets_work() {
        let s = new_secret();
        assert_ne!(s, new_secret());
        let code = code_at(&s, 1_000_000).expect("code");
        assert!(verify(&s, &code, 1_000_000).is_some());
    }
}
