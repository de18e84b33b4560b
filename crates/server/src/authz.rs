//! Authorization: whether an authenticated caller may perform an action on a
//! resource, decided by the policy engine over the caller's identity
//! policies (DESIGN §3).
//!
//! Every service calls [`authorize`] the same way: with the caller, the
//! [`RequestInfo`] of the HTTP request, the IAM action (`iam:CreateUser`,
//! `cloudshell:CreateEnvironment`, …), the resource ARN and any
//! service-specific condition keys. A denial comes back as AWS's
//! `AccessDenied` error, naming the caller, the action, the resource and why.
//!
//! Stored policy documents are parsed once: [`PolicyCache`] keeps parsed
//! documents keyed by their text, so a changed policy can never be evaluated
//! in a stale form, and services drop the entries of documents they replace
//! or delete ([`PolicyCache::forget`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};
use http::StatusCode;
use seashell_policy::{
    evaluate, parse, Context, NamedPolicy, PolicyDocument, PolicyKind, PolicySet, Request,
};

use crate::builtin;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::store::iam::IdentityPolicy;
use crate::store::Store;

/// What the HTTP request says about its circumstances, for condition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The client's address (`aws:SourceIp`).
    pub source_ip: IpAddr,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// The region the request was signed for (`aws:RequestedRegion`).
    pub region: String,
    /// When the request arrived (`aws:CurrentTime`, `aws:EpochTime`).
    pub time: DateTime<Utc>,
}

impl RequestInfo {
    /// Circumstances of a request arriving now.
    pub fn new(source_ip: IpAddr, secure_transport: bool, region: impl Into<String>) -> Self {
        RequestInfo {
            source_ip,
            secure_transport,
            region: region.into(),
            time: Utc::now(),
        }
    }
}

/// Where an identity policy comes from, as policy simulation reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// A built-in (AWS managed) policy.
    AwsManaged,
    /// A customer managed policy.
    UserManaged,
    /// An inline policy of the user.
    UserInline,
    /// An inline policy of a group.
    GroupInline,
    /// An inline policy of a role.
    RoleInline,
}

impl PolicySource {
    /// IAM's name for the source (`aws-managed`, `user-managed`, `user`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::AwsManaged => "aws-managed",
            PolicySource::UserManaged => "user-managed",
            PolicySource::UserInline => "user",
            PolicySource::GroupInline => "group",
            PolicySource::RoleInline => "role",
        }
    }
}

/// One parsed policy that applies to a principal.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy's name, as explanations show it.
    pub name: String,
    /// Where it comes from.
    pub source: PolicySource,
    /// The parsed document.
    pub document: Arc<PolicyDocument>,
}

/// Builds a [`PolicySet`] of identity policies from loaded ones.
pub fn identity_set(policies: &[LoadedPolicy]) -> PolicySet<'_> {
    policies.iter().fold(PolicySet::new(), |set, p| {
        set.identity(&p.name, &p.document)
    })
}

/// Most text kept in the cache, in bytes; beyond it the cache starts afresh
/// (documents are re-parsed on demand, so this only bounds memory).
const CACHE_BUDGET_BYTES: usize = 16 << 20;

type Entries = HashMap<(PolicyKind, String), Arc<PolicyDocument>>;

/// Parsed policy documents keyed by (kind, text), with the bytes of text held.
#[derive(Debug, Default)]
pub struct PolicyCache {
    entries: Mutex<(Entries, usize)>,
}

impl PolicyCache {
    /// The parsed form of `text`, parsing it on first use.
    pub fn parsed(
        &self,
        text: &str,
        kind: PolicyKind,
    ) -> Result<Arc<PolicyDocument>, seashell_policy::PolicyError> {
        let key = (kind, text.to_string());
        if let Some(doc) = self.lock().0.get(&key) {
            return Ok(Arc::clone(doc));
        }
        // Parsed outside the lock: parsing is the slow part.
        let doc = Arc::new(parse(text, kind)?);
        let mut guard = self.lock();
        let (entries, bytes) = &mut *guard;
        if *bytes + text.len() > CACHE_BUDGET_BYTES {
            entries.clear();
            *bytes = 0;
        }
        if entries.insert(key, Arc::clone(&doc)).is_none() {
            *bytes += text.len();
        }
        Ok(doc)
    }

    /// Drops the parsed form of a document that was replaced or deleted.
    pub fn forget(&self, text: &str) {
        let mut guard = self.lock();
        let (entries, bytes) = &mut *guard;
        let before = entries.len();
        entries.retain(|(_, t), _| t != text);
        *bytes = bytes.saturating_sub(text.len() * (before - entries.len()));
    }

    /// How many parsed documents are kept.
    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// Whether no parsed document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Entries, usize)> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (each operation is a single insert, clear or retain, and the byte
        // count only bounds memory).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

static CACHE: LazyLock<PolicyCache> = LazyLock::new(PolicyCache::default);

/// The process-wide cache of parsed stored policies.
pub fn cache() -> &'static PolicyCache {
    &CACHE
}

/// A stored document that no longer parses is a server fault: it was
/// validated when stored. Refusing the request fails closed.
fn stored_policy_error(name: &str, e: &seashell_policy::PolicyError) -> ApiError {
    ApiError::internal(&format!("stored policy {name} does not parse: {e}"))
}

/// The parsed form of a managed policy (built-in or customer managed), or
/// `None` if no such policy exists.
pub async fn managed_policy(store: &Store, arn: &str) -> Result<Option<LoadedPolicy>, ApiError> {
    if let Some(b) = builtin::by_arn(arn) {
        return Ok(Some(LoadedPolicy {
            name: b.name.to_string(),
            source: PolicySource::AwsManaged,
            document: cache()
                .parsed(b.text, PolicyKind::Managed)
                .map_err(|e| stored_policy_error(b.name, &e))?,
        }));
    }
    let Some(text) = store
        .policy_document(arn)
        .await
        .map_err(|e| ApiError::internal(&e))?
    else {
        return Ok(None);
    };
    let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
    let document = cache()
        .parsed(&text, PolicyKind::Managed)
        .map_err(|e| stored_policy_error(&name, &e))?;
    Ok(Some(LoadedPolicy {
        name,
        source: PolicySource::UserManaged,
        document,
    }))
}

/// Every identity policy of a user: managed policies attached to them or
/// their groups, and the inline policies of both. An attachment whose policy
/// no longer exists grants nothing.
pub async fn user_policies(store: &Store, user_id: &str) -> Result<Vec<LoadedPolicy>, ApiError> {
    let found = store
        .identity_policies(user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut out = Vec::with_capacity(found.len());
    for policy in found {
        match policy {
            IdentityPolicy::Attached { arn, .. } => {
                if let Some(p) = managed_policy(store, &arn).await? {
                    // The same policy through the user and a group counts once.
                    if !out
                        .iter()
                        .any(|o: &LoadedPolicy| o.name == p.name && o.source == p.source)
                    {
                        out.push(p);
                    }
                }
            }
            IdentityPolicy::UserInline { name, document } => {
                let document = cache()
                    .parsed(&document, PolicyKind::InlineUser)
                    .map_err(|e| stored_policy_error(&name, &e))?;
                out.push(LoadedPolicy {
                    name,
                    source: PolicySource::UserInline,
                    document,
                });
            }
            IdentityPolicy::GroupInline {
                group,
                name,
                document,
            } => {
                let document = cache()
                    .parsed(&document, PolicyKind::InlineGroup)
                    .map_err(|e| stored_policy_error(&name, &e))?;
                out.push(LoadedPolicy {
                    name: format!("{group}/{name}"),
                    source: PolicySource::GroupInline,
                    document,
                });
            }
        }
    }
    Ok(out)
}

/// The policies of a role (for its sessions): managed policies attached to
/// it and its inline policies.
pub async fn role_policies(store: &Store, role_id: &str) -> Result<Vec<LoadedPolicy>, ApiError> {
    use crate::store::iam::Owner;
    let mut out = Vec::new();
    for arn in store
        .attached_policies(Owner::Role, role_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        if let Some(p) = managed_policy(store, &arn).await? {
            out.push(p);
        }
    }
    for (name, document) in store
        .inline_policies(Owner::Role, role_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        let document = cache()
            .parsed(&document, PolicyKind::InlineRole)
            .map_err(|e| stored_policy_error(&name, &e))?;
        out.push(LoadedPolicy {
            name,
            source: PolicySource::RoleInline,
            document,
        });
    }
    Ok(out)
}

/// The identity policies of whoever is calling: a user's, or for a role
/// session its role's.
pub async fn caller_policies(
    store: &Store,
    caller: &Caller,
) -> Result<Vec<LoadedPolicy>, ApiError> {
    match &caller.role {
        Some(role) => role_policies(store, &role.role_id).await,
        None => user_policies(store, &caller.user_id).await,
    }
}

/// The request context of a caller's request: who, from where, when.
pub fn context(caller: &Caller, info: &RequestInfo) -> Context {
    let mut ctx = Context::new();
    // A role session has no user name (IAM leaves aws:username absent).
    if caller.role.is_none() {
        ctx.insert("aws:username", caller.user_name.as_str());
    }
    let principal_type = if caller.role.is_some() {
        "AssumedRole"
    } else {
        "User"
    };
    // For a role session IAM gives the role's ARN, not the session's.
    let principal_arn = caller
        .role
        .as_ref()
        .map_or(caller.arn.as_str(), |r| r.role_arn.as_str());
    ctx.insert("aws:userid", caller.principal_id.as_str())
        .insert("aws:PrincipalArn", principal_arn)
        .insert("aws:PrincipalAccount", caller.account_id.as_str())
        .insert("aws:PrincipalType", principal_type)
        .insert("aws:SourceIp", info.source_ip.to_string())
        .insert(
            "aws:CurrentTime",
            info.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
        .insert("aws:EpochTime", info.time.timestamp().to_string())
        .insert("aws:SecureTransport", info.secure_transport.to_string())
        .insert("aws:RequestedRegion", info.region.as_str())
        // Long-term access keys are never MFA-authenticated; temporary
        // credentials are when they were issued after an MFA check.
        .insert(
            "aws:MultiFactorAuthPresent",
            if caller.mfa_authenticated() {
                "true"
            } else {
                "false"
            },
        );
    ctx
}

/// The service control policies that bound a principal of `account_id`,
/// one list per level (the organization root, then the account), parsed;
/// `None` outside an organization and for the management account, which
/// SCPs never restrict.
pub async fn service_control_levels(
    store: &Store,
    account_id: &str,
) -> Result<Option<ScpLevels>, ApiError> {
    let Some(levels) = store
        .scp_levels(account_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(levels.len());
    for level in levels {
        let mut parsed = Vec::with_capacity(level.len());
        for scp in level {
            let document = cache()
                .parsed(&scp.document, PolicyKind::ServiceControl)
                .map_err(|e| stored_policy_error(&scp.name, &e))?;
            parsed.push((scp.name, document));
        }
        out.push(parsed);
    }
    Ok(Some(out))
}

/// Parsed SCPs, one list per level.
pub type ScpLevels = Vec<Vec<(String, Arc<PolicyDocument>)>>;

/// Adds the SCP levels of [`service_control_levels`] to a policy set.
pub fn with_service_control<'a>(mut set: PolicySet<'a>, levels: &'a ScpLevels) -> PolicySet<'a> {
    for level in levels {
        set = set.service_control_level(
            level
                .iter()
                .map(|(name, document)| NamedPolicy {
                    name: name.as_str(),
                    document: document.as_ref(),
                })
                .collect(),
        );
    }
    set
}

/// AWS's `AccessDenied` (HTTP 403) for a denied request.
pub fn access_denied(caller_arn: &str, action: &str, resource: &str, phrase: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource} {phrase}"
        ),
    )
}

/// Authorizes `action` on `resource` for `caller`. `extra` holds the
/// operation's own single-valued condition keys (e.g. `iam:PolicyARN`),
/// added to the request context.
pub async fn authorize(
    store: &Store,
    caller: &Caller,
    info: &RequestInfo,
    action: &str,
    resource: &str,
    extra: &[(&str, &str)],
) -> Result<(), ApiError> {
    let mut keys = Context::new();
    for (key, value) in extra {
        keys.insert(key, *value);
    }
    authorize_in(store, caller, info, action, resource, &keys).await
}

/// [`authorize`] with the operation's condition keys as a [`Context`], for
/// multivalued keys (`cloudshell:VpcIds`, `aws:TagKeys`, …).
pub async fn authorize_in(
    store: &Store,
    caller: &Caller,
    info: &RequestInfo,
    action: &str,
    resource: &str,
    extra: &Context,
) -> Result<(), ApiError> {
    let policies = caller_policies(store, caller).await?;
    let mut ctx = context(caller, info);
    for (key, values) in extra.iter() {
        ctx.insert_multi(key, values.iter().cloned());
    }
    let scps = service_control_levels(store, &caller.account_id).await?;
    let levels = scps.unwrap_or_default();
    let set = with_service_control(identity_set(&policies), &levels);
    let decision = evaluate(&Request::new(&caller.arn, action, resource, &ctx), &set);
    if decision.is_allowed() {
        tracing::debug!(%action, %resource, %decision, "allowed");
        Ok(())
    } else {
        tracing::info!(%action, %resource, %decision, "denied");
        Err(access_denied(
            &caller.arn,
            action,
            resource,
            &decision.denial_phrase(action),
        ))
    }
}
