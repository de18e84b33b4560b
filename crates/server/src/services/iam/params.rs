//! Reading and checking IAM request parameters, with the `ValidationError`
//! messages AWS gives for values outside the model's constraints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;
use crate::protocol::query::QueryRequest;

/// Longest policy document accepted on the wire (the model's limit; the
/// kind's own limit, checked by the policy engine, is lower).
pub const MAX_DOCUMENT_CHARS: usize = 131_072;

fn constraint(value: &str, field: &str, what: &str) -> ApiError {
    let shown: String = value.chars().take(64).collect();
    ApiError::validation(format!(
        "1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {what}"
    ))
}

/// A required parameter.
pub fn required<'a>(req: &'a QueryRequest, name: &str, field: &str) -> Result<&'a str, ApiError> {
    req.param(name).ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// Checks a user, group, role or policy name: `[\w+=,.@-]+`, 1 to `max` characters.
pub fn check_name(value: &str, field: &str, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(constraint(
            value,
            field,
            &format!("Member must have length between 1 and {max}"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(constraint(
            value,
            field,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// A required name parameter, checked.
pub fn name<'a>(
    req: &'a QueryRequest,
    param: &str,
    field: &str,
    max: usize,
) -> Result<&'a str, ApiError> {
    let value = required(req, param, field)?;
    check_name(value, field, max)?;
    Ok(value)
}

/// An optional IAM path (`/` or `/a/b/`), `/` when absent.
pub fn path<'a>(req: &'a QueryRequest, param: &str, field: &str) -> Result<&'a str, ApiError> {
    let Some(value) = req.param(param) else {
        return Ok("/");
    };
    let ok = value.len() <= 512
        && value.starts_with('/')
        && value.ends_with('/')
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !ok {
        return Err(constraint(
            value,
            field,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ));
    }
    Ok(value)
}

/// An optional path prefix for listings, `/` when absent.
pub fn path_prefix(req: &QueryRequest) -> Result<&str, ApiError> {
    let Some(value) = req.param("PathPrefix") else {
        return Ok("/");
    };
    if value.is_empty()
        || value.len() > 512
        || !value.starts_with('/')
        || !value.bytes().all(|b| (0x21..=0x7f).contains(&b))
    {
        return Err(constraint(
            value,
            "pathPrefix",
            "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*",
        ));
    }
    Ok(value)
}

/// A required policy document, within the wire limit (the engine checks the rest).
pub fn document<'a>(req: &'a QueryRequest, param: &str, field: &str) -> Result<&'a str, ApiError> {
    let value = required(req, param, field)?;
    let len = value.chars().count();
    if len == 0 || len > MAX_DOCUMENT_CHARS {
        return Err(constraint(
            "",
            field,
            &format!("Member must have length between 1 and {MAX_DOCUMENT_CHARS}"),
        ));
    }
    Ok(value)
}

/// A required policy ARN.
pub fn policy_arn(req: &QueryRequest) -> Result<&str, ApiError> {
    let value = required(req, "PolicyArn", "policyArn")?;
    if value.len() < 20 || value.len() > 2048 {
        return Err(constraint(
            value,
            "policyArn",
            "Member must have length between 20 and 2048",
        ));
    }
    Ok(value)
}

/// An optional boolean (`true`/`false`).
pub fn boolean(req: &QueryRequest, param: &str, field: &str) -> Result<Option<bool>, ApiError> {
    match req.param(param) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(constraint(v, field, "Member must be a boolean")),
    }
}

/// An optional integer within `min..=max`.
pub fn integer(
    req: &QueryRequest,
    param: &str,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = req.param(param) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(constraint(
            v,
            field,
            &format!("Member must have value between {min} and {max}"),
        )),
    }
}

/// An optional value from a fixed set.
pub fn one_of<'a>(
    req: &'a QueryRequest,
    param: &str,
    field: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    match req.param(param) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(constraint(
            v,
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        )),
    }
}

/// The members of a list parameter `Name.member.1`, `Name.member.2`, … in
/// order; a gap ends the list, as AWS reads it.
pub fn list(req: &QueryRequest, prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|i| {
            req.param(&format!("{prefix}.member.{i}"))
                .map(str::to_string)
        })
        .collect()
}

/// Pagination: where a listing starts and how many items it gives.
#[derive(Debug, Clone)]
pub struct Page {
    start_after: Option<String>,
    max_items: usize,
}

/// Reads `Marker` and `MaxItems` (1 to 1000, 100 by default).
pub fn page(req: &QueryRequest) -> Result<Page, ApiError> {
    let max_items = integer(req, "MaxItems", "maxItems", 1, 1000)?.unwrap_or(100);
    let start_after = match req.param("Marker") {
        None => None,
        Some(m) => {
            let key = URL_SAFE_NO_PAD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::validation("Invalid Marker."))?;
            Some(key)
        }
    };
    Ok(Page {
        start_after,
        max_items: usize::try_from(max_items).unwrap_or(100),
    })
}

/// One page of a listing.
#[derive(Debug)]
pub struct Paged<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The marker for the next page, when there is one.
    pub marker: Option<String>,
}

impl Page {
    /// The page of `items` this request asks for, in the order of `key`
    /// (unique per item). Items are sorted here rather than by the database,
    /// whose collation may order text differently from the marker's bytes.
    pub fn apply<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Paged<T> {
        let mut keyed: Vec<(String, T)> = items.into_iter().map(|i| (key(&i), i)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(after) = &self.start_after {
            keyed.retain(|(k, _)| k > after);
        }
        let marker = if keyed.len() > self.max_items {
            keyed.truncate(self.max_items);
            keyed.last().map(|(k, _)| URL_SAFE_NO_PAD.encode(k))
        } else {
            None
        };
        Paged {
            items: keyed.into_iter().map(|(_, i)| i).collect(),
            marker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> QueryRequest {
        QueryRequest::decode("", body.as_bytes(), "2010-05-08").expect("decodes")
    }

    #[test]
    fn names() {
        assert!(check_name("alice.b@x-y_z+=,", "userName", 64).is_ok());
        assert!(check_name("", "userName", 64).is_err());
        assert!(check_name("a b", "userName", 64).is_err());
        assert!(check_name(&"a".repeat(65), "userName", 64).is_err());
    }

    #[test]
    fn paths() {
        let r = req("Action=X&Version=2010-05-08&Path=/a/b/");
        assert_eq!(path(&r, "Path", "path").ok(), Some("/a/b/"));
        let r = req("Action=X&Version=2010-05-08&Path=a");
        assert!(path(&r, "Path", "path").is_err());
    }

    #[test]
    fn pages() {
        let items: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let p = page(&req("Action=X&Version=2010-05-08&MaxItems=2")).expect("page");
        let first = p.apply(items.clone(), Clone::clone);
        assert_eq!(first.items, ["k0", "k1"]);
        let marker = first.marker.expect("more");
        let p = page(&req(&format!(
            "Action=X&Version=2010-05-08&MaxItems=2&Marker={marker}"
        )))
        .expect("page");
        assert_eq!(p.apply(items.clone(), Clone::clone).items, ["k2", "k3"]);
        assert!(page(&req("Action=X&Version=2010-05-08&MaxItems=0")).is_err());
        assert!(page(&req("Action=X&Version=2010-05-08&Marker=%%%")).is_err());
    }

    #[test]
    fn lists_stop_at_gaps() {
        let r = req("Action=X&Version=2010-05-08&A.member.1=x&A.member.2=y&A.member.4=z");
        assert_eq!(list(&r, "A"), ["x", "y"]);
    }
}
