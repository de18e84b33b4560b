//! The request being authorized: who, what, on which resource, in which context.

/// Condition keys and their values for one request (`aws:username`,
/// `aws:SourceIp`, `cloudshell:VpcIds`, …).
///
/// Key names are case-insensitive, as in IAM; values keep their case. A key may
/// hold one value or several (multivalued keys such as `aws:TagKeys`). A key
/// that was never inserted is *absent*, which several operators treat specially.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Sorted by (length, lower-cased key). A request has a dozen or so keys,
    /// so a binary search beats hashing and needs no seed; comparing lengths
    /// first settles most steps without looking at the bytes, which matters
    /// because every key starts with the same `aws:`.
    values: Vec<(String, Vec<String>)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets a single-valued key, replacing any earlier value.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) -> &mut Context {
        self.set(key, vec![value.into()]);
        self
    }

    fn set(&mut self, key: &str, values: Vec<String>) {
        let key = key.to_ascii_lowercase();
        match self.position(&key) {
            Ok(i) => self.values[i].1 = values,
            Err(i) => self.values.insert(i, (key, values)),
        }
    }

    fn position(&self, key_lower: &str) -> Result<usize, usize> {
        self.values.binary_search_by(|(k, _)| {
            k.len()
                .cmp(&key_lower.len())
                .then_with(|| compare_from_end(k.as_bytes(), key_lower.as_bytes()))
        })
    }

    /// The values of an already lower-cased key.
    pub(crate) fn lookup(&self, key_lower: &str) -> Option<&[String]> {
        let i = self.position(key_lower).ok()?;
        self.values.get(i).map(|(_, v)| v.as_slice())
    }

    /// Sets a multivalued key, replacing any earlier value. An empty list is a
    /// key that is present with no values, which IAM treats like an absent key
    /// for the set qualifiers and `Null`.
    pub fn insert_multi<I, S>(&mut self, key: &str, values: I) -> &mut Context
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set(key, values.into_iter().map(Into::into).collect());
        self
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) {
        if let Ok(i) = self.position(&key.to_ascii_lowercase()) {
            self.values.remove(i);
        }
    }

    /// The values of a key, if present. `key` may be in any case.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lookup(&key.to_ascii_lowercase())
        } else {
            self.lookup(key)
        }
    }

    /// Whether the key is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of a key that holds exactly one value (what a policy variable
    /// can be replaced with).
    pub(crate) fn single(&self, key_lower: &str) -> Option<&str> {
        match self.lookup(key_lower) {
            Some([one]) => Some(one.as_str()),
            _ => None,
        }
    }

    /// Iterates over `(lower-cased key, values)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Orders equal-length keys by their bytes from the end: keys share their
/// `aws:` prefix, so the last bytes tell them apart soonest.
fn compare_from_end(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Who is making the request, as resource-based policies (such as role trust
/// policies) name principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    /// An IAM identity by ARN: a user, a role, an assumed-role session
    /// (`arn:aws:sts::123456789012:assumed-role/Role/session`), an account root.
    Aws(&'a str),
    /// A service principal such as `cloudshell.amazonaws.com`.
    Service(&'a str),
    /// A federated identity provider (an OIDC or SAML provider ARN, or a name
    /// such as `accounts.google.com`).
    Federated(&'a str),
    /// An unauthenticated caller.
    Anonymous,
}

impl<'a> Principal<'a> {
    /// The 12-digit account of an AWS principal, from its ARN.
    pub fn account(&self) -> Option<&'a str> {
        match self {
            Principal::Aws(arn) => arn.split(':').nth(4).filter(|a| !a.is_empty()),
            _ => None,
        }
    }
}

/// One authorization request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller.
    pub principal: Principal<'a>,
    /// The action, `service:Operation` (e.g. `cloudshell:CreateEnvironment`).
    pub action: &'a str,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    pub resource: &'a str,
    /// Condition keys.
    pub context: &'a Context,
}

impl<'a> Request<'a> {
    /// A request from an AWS principal.
    pub fn new(
        principal_arn: &'a str,
        action: &'a str,
        resource: &'a str,
        context: &'a Context,
    ) -> Request<'a> {
        Request {
            principal: Principal::Aws(principal_arn),
            action,
            resource,
            context,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_values_are_not() {
        let mut ctx = Context::new();
        ctx.insert("AWS:UserName", "Alice");
        assert_eq!(ctx.get("aws:username"), Some(&["Alice".to_string()][..]));
        assert_eq!(ctx.get("AWS:USERNAME"), Some(&["Alice".to_string()][..]));
        assert!(ctx.contains("aws:userName"));
        ctx.remove("aws:USERNAME");
        assert!(!ctx.contains("aws:username"));
    }

    #[test]
    fn single_only_for_one_value() {
        let mut ctx = Context::new();
        ctx.insert_multi("k", ["a", "b"]);
        assert_eq!(ctx.single("k"), None);
        ctx.insert_multi("k", ["a"]);
        assert_eq!(ctx.single("k"), Some("a"));
        ctx.insert_multi("k", Vec::<String>::new());
        assert_eq!(ctx.single("k"), None);
    }

    #[test]
    fn principal_account() {
        assert_eq!(
            Principal::Aws("arn:aws:iam::123456789012:user/a").account(),
            Some("123456789012")
        );
        assert_eq!(Principal::Aws("garbage").account(), None);
        assert_eq!(Principal::Service("x.amazonaws.com").account(), None);
    }
}
