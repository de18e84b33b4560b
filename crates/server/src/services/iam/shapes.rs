//! IAM's reply shapes, as botocore's model names their members.

use serde_json::{json, Value};

use crate::builtin::BuiltinPolicy;
use crate::protocol::xml::XmlWriter;
use crate::store::iam::{Group, ManagedPolicy, PolicyVersion, Role};
use crate::store::User;

/// When built-in policies date from (2015-02-06T18:39:46Z, when AWS
/// published its managed policies), so their dates are the same everywhere.
pub const BUILTIN_CREATED_MS: i64 = 1_423_247_986_000;

/// A time in milliseconds as the Query protocol writes timestamps.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A policy document as IAM returns it: percent-encoded (RFC 3986), which
/// botocore decodes (and parses) for its callers.
pub fn encode_document(document: &str) -> String {
    let mut out = String::with_capacity(document.len() * 2);
    for b in document.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `IsTruncated` and `Marker` after a listing.
pub fn truncation(w: &mut XmlWriter, marker: Option<&str>) {
    w.element(
        "IsTruncated",
        if marker.is_some() { "true" } else { "false" },
    );
    if let Some(m) = marker {
        w.element("Marker", m);
    }
}

/// The members of a `User` shape.
pub fn user(w: &mut XmlWriter, u: &User) {
    w.element("Path", &u.path)
        .element("UserName", &u.name)
        .element("UserId", &u.user_id)
        .element("Arn", &u.arn())
        .element("CreateDate", &timestamp(u.created_at));
}

/// A `User` for the audit record.
pub fn user_json(u: &User) -> Value {
    json!({
        "path": u.path, "userName": u.name, "userId": u.user_id,
        "arn": u.arn(), "createDate": timestamp(u.created_at),
    })
}

/// The members of a `Group` shape.
pub fn group(w: &mut XmlWriter, g: &Group) {
    w.element("Path", &g.path)
        .element("GroupName", &g.name)
        .element("GroupId", &g.group_id)
        .element("Arn", &g.arn())
        .element("CreateDate", &timestamp(g.created_at));
}

/// A `Group` for the audit record.
pub fn group_json(g: &Group) -> Value {
    json!({
        "path": g.path, "groupName": g.name, "groupId": g.group_id,
        "arn": g.arn(), "createDate": timestamp(g.created_at),
    })
}

/// The members of a `Role` shape.
pub fn role(w: &mut XmlWriter, r: &Role, with_trust_policy: bool) {
    w.element("Path", &r.path)
        .element("RoleName", &r.name)
        .element("RoleId", &r.role_id)
        .element("Arn", &r.arn())
        .element("CreateDate", &timestamp(r.created_at));
    if with_trust_policy {
        w.element(
            "AssumeRolePolicyDocument",
            &encode_document(&r.trust_policy),
        );
    }
    if let Some(d) = &r.description {
        w.element("Description", d);
    }
    w.element("MaxSessionDuration", &r.max_session_duration.to_string());
}

/// A `Role` for the audit record.
pub fn role_json(r: &Role) -> Value {
    json!({
        "path": r.path, "roleName": r.name, "roleId": r.role_id,
        "arn": r.arn(), "createDate": timestamp(r.created_at),
    })
}

/// What a `Policy` shape shows, for built-in and customer managed policies alike.
pub struct PolicyView<'a> {
    /// The name.
    pub name: &'a str,
    /// The ID.
    pub id: String,
    /// The ARN.
    pub arn: &'a str,
    /// The path.
    pub path: &'a str,
    /// The default version.
    pub default_version: &'a str,
    /// How many entities it is attached to.
    pub attachment_count: i64,
    /// The description.
    pub description: Option<&'a str>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

impl<'a> PolicyView<'a> {
    /// A customer managed policy.
    pub fn customer(p: &'a ManagedPolicy, attachment_count: i64) -> Self {
        PolicyView {
            name: &p.name,
            id: p.policy_id.clone(),
            arn: &p.arn,
            path: &p.path,
            default_version: &p.default_version,
            attachment_count,
            description: p.description.as_deref(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }

    /// A built-in policy; they have one version and exist from the start.
    pub fn builtin(p: &'a BuiltinPolicy, attachment_count: i64) -> Self {
        PolicyView {
            name: p.name,
            id: builtin_policy_id(p.arn),
            arn: p.arn,
            path: "/",
            default_version: "v1",
            attachment_count,
            description: None,
            created_at: BUILTIN_CREATED_MS,
            updated_at: BUILTIN_CREATED_MS,
        }
    }

    /// The members of the `Policy` shape.
    pub fn write(&self, w: &mut XmlWriter, with_description: bool) {
        w.element("PolicyName", self.name)
            .element("PolicyId", &self.id)
            .element("Arn", self.arn)
            .element("Path", self.path)
            .element("DefaultVersionId", self.default_version)
            .element("AttachmentCount", &self.attachment_count.to_string())
            .element("PermissionsBoundaryUsageCount", "0")
            .element("IsAttachable", "true");
        if with_description {
            if let Some(d) = self.description {
                w.element("Description", d);
            }
        }
        w.element("CreateDate", &timestamp(self.created_at))
            .element("UpdateDate", &timestamp(self.updated_at));
    }

    /// The policy for the audit record.
    pub fn json(&self) -> Value {
        json!({
            "policyName": self.name, "policyId": self.id, "arn": self.arn,
            "path": self.path, "defaultVersionId": self.default_version,
            "attachmentCount": self.attachment_count, "isAttachable": true,
            "createDate": timestamp(self.created_at), "updateDate": timestamp(self.updated_at),
        })
    }
}

/// A stable policy ID for a built-in policy, derived from its ARN (FNV-1a),
/// so listings show the same ID on every installation.
fn builtin_policy_id(arn: &str) -> String {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in arn.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    let tail: String = (0..17)
        .map(|i| char::from(BASE32[usize::try_from((h >> (i * 5)) & 31).unwrap_or(0)]))
        .collect();
    format!("ANPA{tail}")
}

/// The members of a `PolicyVersion` shape.
pub fn policy_version(w: &mut XmlWriter, v: &PolicyVersion, is_default: bool, with_doc: bool) {
    if with_doc {
        w.element("Document", &encode_document(&v.document));
    }
    w.element("VersionId", &v.version_id)
        .element(
            "IsDefaultVersion",
            if is_default { "true" } else { "false" },
        )
        .element("CreateDate", &timestamp(v.created_at));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_percent_encoded() {
        assert_eq!(
            encode_document(r#"{"A": "b*"}"#),
            "%7B%22A%22%3A%20%22b%2A%22%7D"
        );
    }

    #[test]
    fn builtin_ids_are_stable() {
        let a = builtin_policy_id("arn:aws:iam::aws:policy/AdministratorAccess");
        assert_eq!(
            a,
            builtin_policy_id("arn:aws:iam::aws:policy/AdministratorAccess")
        );
        assert_ne!(
            a,
            builtin_policy_id("arn:aws:iam::aws:policy/ReadOnlyAccess")
        );
        assert_eq!(a.len(), 21);
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
