//! The account password policy (AWS's default): at least 8 characters, at
//! least three of upper case, lower case, digits and symbols, and not the
//! user name.

/// Checks a new password; the error says what is missing.
pub fn check(password: &str, user_name: &str) -> Result<(), String> {
    const MIN: usize = 8;
    const MAX: usize = 128;
    let length = password.chars().count();
    if length < MIN {
        return Err(format!("Password must be at least {MIN} characters long."));
    }
    if length > MAX {
        return Err(format!("Password must be at most {MAX} characters long."));
    }
    let kinds = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if kinds.iter().filter(|k| **k).count() < 3 {
        return Err(
            "Password must include at least three of: upper case letters, lower case letters, \
             numbers, symbols."
                .into(),
        );
    }
    if password.eq_ignore_ascii_case(user_name) {
        return Err("Password must not be the user name.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check("Sh0rt!", "a").is_err());
        assert!(check("alllowercase1", "a").is_err());
        assert!(check("Lower-and-UPPER", "a").is_ok());
        assert!(check("abcDEF123", "a").is_ok());
        assert!(check("Alice-1234", "alice-1234").is_err());
        assert!(check(&"Aa1!".repeat(40), "a").is_err());
    }
}
