//! IAM Identity Center state: organizations and their accounts, service
//! control policies, the Identity Center instance with its identity store
//! (users, groups, memberships), permission sets, account assignments and
//! the roles assignments materialize (docs/identity-center.md).
//!
//! The materialization rule: while a permission set has at least one
//! assignment in an account, the IAM role `AWSReservedSSO_<set>_<hash>`
//! exists there with the set's session duration, managed policies and
//! inline policy. Every change that could break the rule (assignments,
//! the set's policies, deletions) re-establishes it in the same
//! transaction, so a failure leaves both sides as they were.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{insert_account, now_ms, query_err, Store, StoreError};

/// Why an Identity Center change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    /// The entity named does not exist (the message says which).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (duplicates, dependents).
    #[error("{0}")]
    Conflict(String),
    /// The request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The account already belongs to an organization.
    #[error("The account is already a member of an organization.")]
    AlreadyInOrganization,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ID of the AWS managed SCP every organization has.
pub const FULL_AWS_ACCESS_ID: &str = "p-FullAWSAccess";
/// Its document, as AWS has it.
pub const FULL_AWS_ACCESS_DOCUMENT: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// Path of the roles permission sets materialize.
pub const SSO_ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";
/// Name of the inline policy of a materialized role.
pub const SSO_INLINE_POLICY_NAME: &str = "AwsSSOInlinePolicy";
/// Shortest and longest session of a permission set, in seconds.
pub const SESSION_RANGE: (i64, i64) = (3_600, 43_200);

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `o-<10 alphanumerics>`.
    pub organization_id: String,
    /// The management account.
    pub management_account: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Organization {
    /// The root's ID: `r-` and the organization ID's whole suffix, so it
    /// needs no column of its own and, being unique like the organization's
    /// ID, can key SCP attachments.
    pub fn root_id(&self) -> String {
        format!("r-{}", self.organization_id.trim_start_matches("o-"))
    }

    /// `arn:aws:organizations::<management>:organization/<id>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:organizations::{}:organization/{}",
            self.management_account, self.organization_id
        )
    }
}

/// An account of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// The 12-digit ID.
    pub account_id: String,
    /// The organization.
    pub organization_id: String,
    /// The account's name.
    pub name: String,
    /// Its email address.
    pub email: String,
    /// Milliseconds since the epoch.
    pub joined_at: i64,
}

/// A service control policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scp {
    /// `p-…`.
    pub policy_id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// The document.
    pub document: String,
    /// Whether it is AWS's `FullAWSAccess`.
    pub aws_managed: bool,
}

impl Scp {
    fn full_aws_access() -> Scp {
        Scp {
            policy_id: FULL_AWS_ACCESS_ID.to_string(),
            name: "FullAWSAccess".to_string(),
            description: "Allows access to every operation".to_string(),
            document: FULL_AWS_ACCESS_DOCUMENT.to_string(),
            aws_managed: true,
        }
    }
}

/// The Identity Center instance of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `arn:aws:sso:::instance/ssoins-<16 hex>`.
    pub instance_arn: String,
    /// `d-<10 alphanumerics>`.
    pub identity_store_id: String,
    /// The organization.
    pub organization_id: String,
    /// The management account (the instance's owner).
    pub owner_account: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Instance {
    /// `ssoins-…`, the ARN's last part.
    pub fn suffix(&self) -> &str {
        self.instance_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.instance_arn)
    }
}

/// A user of an identity store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// A UUID.
    pub user_id: String,
    /// The store.
    pub identity_store_id: String,
    /// The user name, as given.
    pub user_name: String,
    /// The display name.
    pub display_name: String,
    /// The primary email address.
    pub email: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A group of an identity store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoGroup {
    /// A UUID.
    pub group_id: String,
    /// The store.
    pub identity_store_id: String,
    /// The display name (unique in the store regardless of case).
    pub display_name: String,
    /// The description.
    pub description: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A user's membership of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// A UUID.
    pub membership_id: String,
    /// The group.
    pub group_id: String,
    /// The member.
    pub user_id: String,
}

/// A permission set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    /// `arn:aws:sso:::permissionSet/ssoins-…/ps-<16 hex>`.
    pub permission_set_arn: String,
    /// The instance.
    pub instance_arn: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// Seconds, 3600 to 43200.
    pub session_duration_secs: i64,
    /// The relay state.
    pub relay_state: Option<String>,
    /// The inline policy, if any.
    pub inline_policy: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// An account assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The account.
    pub account_id: String,
    /// The permission set.
    pub permission_set_arn: String,
    /// `USER` or `GROUP`.
    pub principal_type: String,
    /// The user's or group's ID.
    pub principal_id: String,
}

/// A role an identity-store user may use, through an assignment to them or
/// to one of their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedRole {
    /// The account.
    pub account_id: String,
    /// Its name in the organization.
    pub account_name: String,
    /// Its email address.
    pub account_email: String,
    /// The permission set.
    pub permission_set_arn: String,
    /// Its name.
    pub permission_set_name: String,
    /// The materialized role's ID (`AROA…`).
    pub role_id: String,
    /// The role's name (`AWSReservedSSO_<set>_<hash>`).
    pub role_name: String,
    /// The permission set's session duration.
    pub session_duration_secs: i64,
}

/// Lowercase letters and digits, for organization and store IDs.
fn alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = OsRng;
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn hex16() -> String {
    let mut bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    hex::encode(bytes)
}

/// The name of the role a permission set materializes in an account:
/// stable, as the hash covers only the set's ARN and the account.
pub fn sso_role_name(
    permission_set_name: &str,
    permission_set_arn: &str,
    account_id: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(permission_set_arn.as_bytes());
    hasher.update(account_id.as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("AWSReservedSSO_{permission_set_name}_{}", &digest[..16])
}

/// The trust policy of a materialized role.
fn sso_trust_policy(account_id: &str, instance_suffix: &str) -> String {
    let provider = format!(
        "arn:aws:iam::{account_id}:saml-provider/AWSSSO_{}_DO_NOT_DELETE",
        instance_suffix.trim_start_matches("ssoins-")
    );
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}
        }]
    })
    .to_string()
}

/// Parses an ISO-8601 duration of whole hours and minutes (`PT1H`,
/// `PT90M`, `PT1H30M`) into seconds within [`SESSION_RANGE`].
pub fn parse_session_duration(text: &str) -> Result<i64, CenterError> {
    let invalid = || {
        CenterError::Invalid(format!(
            "The session duration {text} is not valid: give an ISO-8601 duration from PT1H to PT12H."
        ))
    };
    let rest = text.strip_prefix("PT").ok_or_else(invalid)?;
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut secs = 0i64;
    let mut number = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        let unit = match c {
            'H' => 3_600,
            'M' => 60,
            'S' => 1,
            _ => return Err(invalid()),
        };
        secs = secs
            .checked_add(n.checked_mul(unit).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
    }
    if !number.is_empty() || secs < SESSION_RANGE.0 || secs > SESSION_RANGE.1 {
        return Err(invalid());
    }
    Ok(secs)
}

/// Seconds as the API shows a session duration (`PT1H`, `PT1H30M`).
pub fn format_session_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3_600, (secs % 3_600) / 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || out == "PT" {
        out.push_str(&format!("{s}S"));
    }
    out
}

fn map_rows<T>(
    rows: &[AnyRow],
    doing: &'static str,
    f: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(query_err(doing))
}

fn org_from_row(r: &AnyRow) -> Result<Organization, sqlx::Error> {
    Ok(Organization {
        organization_id: r.try_get("organization_id")?,
        management_account: r.try_get("management_account")?,
        created_at: r.try_get("created_at")?,
    })
}

fn account_from_row(r: &AnyRow) -> Result<OrgAccount, sqlx::Error> {
    Ok(OrgAccount {
        account_id: r.try_get("account_id")?,
        organization_id: r.try_get("organization_id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        joined_at: r.try_get("joined_at")?,
    })
}

fn scp_from_row(r: &AnyRow) -> Result<Scp, sqlx::Error> {
    Ok(Scp {
        policy_id: r.try_get("policy_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        document: r.try_get("document")?,
        aws_managed: false,
    })
}

fn instance_from_row(r: &AnyRow) -> Result<Instance, sqlx::Error> {
    Ok(Instance {
        instance_arn: r.try_get("instance_arn")?,
        identity_store_id: r.try_get("identity_store_id")?,
        organization_id: r.try_get("organization_id")?,
        owner_account: r.try_get("management_account")?,
        created_at: r.try_get("created_at")?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<SsoUser, sqlx::Error> {
    Ok(SsoUser {
        user_id: r.try_get("user_id")?,
        identity_store_id: r.try_get("identity_store_id")?,
        user_name: r.try_get("user_name")?,
        display_name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
    })
}

fn group_from_row(r: &AnyRow) -> Result<SsoGroup, sqlx::Error> {
    Ok(SsoGroup {
        group_id: r.try_get("group_id")?,
        identity_store_id: r.try_get("identity_store_id")?,
        display_name: r.try_get("display_name")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
    })
}

fn membership_from_row(r: &AnyRow) -> Result<Membership, sqlx::Error> {
    Ok(Membership {
        membership_id: r.try_get("membership_id")?,
        group_id: r.try_get("group_id")?,
        user_id: r.try_get("user_id")?,
    })
}

fn permission_set_from_row(r: &AnyRow) -> Result<PermissionSet, sqlx::Error> {
    Ok(PermissionSet {
        permission_set_arn: r.try_get("permission_set_arn")?,
        instance_arn: r.try_get("instance_arn")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        session_duration_secs: r.try_get("session_duration_secs")?,
        relay_state: r.try_get("relay_state")?,
        inline_policy: r.try_get("inline_policy")?,
        created_at: r.try_get("created_at")?,
    })
}

fn assignment_from_row(r: &AnyRow) -> Result<Assignment, sqlx::Error> {
    Ok(Assignment {
        account_id: r.try_get("account_id")?,
        permission_set_arn: r.try_get("permission_set_arn")?,
        principal_type: r.try_get("principal_type")?,
        principal_id: r.try_get("principal_id")?,
    })
}

const INSTANCE_SELECT: &str = "SELECT i.instance_arn, i.identity_store_id, i.organization_id, \
     i.created_at, o.management_account FROM sso_instances i \
     JOIN organizations o ON o.organization_id = i.organization_id";
const USER_COLUMNS: &str = "user_id, identity_store_id, user_name, display_name, email, created_at";
const GROUP_COLUMNS: &str = "group_id, identity_store_id, display_name, description, created_at";
const PS_COLUMNS: &str = "permission_set_arn, instance_arn, name, description, \
     session_duration_secs, relay_state, inline_policy, created_at";

type Tx = Transaction<'static, Any>;

async fn exec<'q>(
    tx: &mut Tx,
    doing: &'static str,
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
) -> Result<u64, StoreError> {
    q.execute(&mut **tx)
        .await
        .map(|d| d.rows_affected())
        .map_err(query_err(doing))
}

async fn commit(tx: Tx) -> Result<(), StoreError> {
    tx.commit().await.map_err(query_err("committing"))
}

/// Takes the write lock on a permission set's row, so concurrent changes to
/// the set and its assignments run one after the other.
async fn lock_permission_set(
    tx: &mut Tx,
    instance_arn: &str,
    arn: &str,
) -> Result<PermissionSet, CenterError> {
    let n = exec(
        tx,
        "locking permission set",
        sqlx::query(
            "UPDATE sso_permission_sets SET name = name WHERE permission_set_arn = $1 AND instance_arn = $2",
        )
        .bind(arn)
        .bind(instance_arn),
    )
    .await?;
    if n == 0 {
        return Err(ps_not_found(arn));
    }
    let row = sqlx::query(&format!(
        "SELECT {PS_COLUMNS} FROM sso_permission_sets WHERE permission_set_arn = $1"
    ))
    .bind(arn)
    .fetch_one(&mut **tx)
    .await
    .map_err(query_err("reading permission set"))?;
    Ok(permission_set_from_row(&row).map_err(query_err("reading permission set"))?)
}

fn ps_not_found(arn: &str) -> CenterError {
    CenterError::NotFound(format!(
        "Could not find PermissionSet with PermissionSetArn {arn}."
    ))
}

async fn ps_policies(tx: &mut Tx, arn: &str) -> Result<Vec<String>, StoreError> {
    let found = sqlx::query(
        "SELECT policy_arn FROM sso_permission_set_policies WHERE permission_set_arn = $1 ORDER BY policy_arn",
    )
    .bind(arn)
    .fetch_all(&mut **tx)
    .await
    .map_err(query_err("reading permission set policies"))?;
    map_rows(&found, "reading permission set policies", |r| {
        r.try_get("policy_arn")
    })
}

/// Makes the role of `ps` in `account` exist and match the set.
async fn materialize(tx: &mut Tx, ps: &PermissionSet, account_id: &str) -> Result<(), CenterError> {
    let suffix = ps
        .instance_arn
        .rsplit('/')
        .next()
        .unwrap_or(&ps.instance_arn)
        .to_string();
    let trust = sso_trust_policy(account_id, &suffix);
    let existing = sqlx::query(
        "SELECT role_id FROM sso_provisioned_roles WHERE account_id = $1 AND permission_set_arn = $2",
    )
    .bind(account_id)
    .bind(&ps.permission_set_arn)
    .fetch_optional(&mut **tx)
    .await
    .map_err(query_err("reading provisioned role"))?;
    let role_id: String = match existing {
        Some(row) => {
            let id: String = row
                .try_get("role_id")
                .map_err(query_err("reading provisioned role"))?;
            exec(
                tx,
                "updating provisioned role",
                sqlx::query(
                    "UPDATE iam_roles SET max_session_duration = $1, trust_policy = $2 WHERE role_id = $3",
                )
                .bind(ps.session_duration_secs)
                .bind(&trust)
                .bind(&id),
            )
            .await?;
            id
        }
        None => {
            let name = sso_role_name(&ps.name, &ps.permission_set_arn, account_id);
            let id = super::iam::unique_role_id();
            let description = "Created by Seashell IAM Identity Center for a permission set";
            sqlx::query(
                "INSERT INTO iam_roles (role_id, account_id, name, name_key, path, description, \
                 max_session_duration, trust_policy, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(account_id)
            .bind(&name)
            .bind(name.to_lowercase())
            .bind(SSO_ROLE_PATH)
            .bind(description)
            .bind(ps.session_duration_secs)
            .bind(&trust)
            .bind(now_ms())
            .execute(&mut **tx)
            .await
            .map_err(|e| match query_err("creating provisioned role")(e) {
                StoreError::AlreadyExists(_) => CenterError::Conflict(format!(
                    "A role named {name} already exists in account {account_id}."
                )),
                other => CenterError::Store(other),
            })?;
            exec(
                tx,
                "recording provisioned role",
                sqlx::query(
                    "INSERT INTO sso_provisioned_roles (account_id, permission_set_arn, role_id) VALUES ($1, $2, $3)",
                )
                .bind(account_id)
                .bind(&ps.permission_set_arn)
                .bind(&id),
            )
            .await?;
            id
        }
    };
    exec(
        tx,
        "syncing role policies",
        sqlx::query("DELETE FROM role_policy_attachments WHERE role_id = $1").bind(&role_id),
    )
    .await?;
    for arn in ps_policies(tx, &ps.permission_set_arn).await? {
        exec(
            tx,
            "syncing role policies",
            sqlx::query(
                "INSERT INTO role_policy_attachments (role_id, policy_arn) VALUES ($1, $2)",
            )
            .bind(&role_id)
            .bind(arn),
        )
        .await?;
    }
    exec(
        tx,
        "syncing role inline policy",
        sqlx::query("DELETE FROM role_inline_policies WHERE role_id = $1").bind(&role_id),
    )
    .await?;
    if let Some(doc) = &ps.inline_policy {
        exec(
            tx,
            "syncing role inline policy",
            sqlx::query(
                "INSERT INTO role_inline_policies (role_id, name, document) VALUES ($1, $2, $3)",
            )
            .bind(&role_id)
            .bind(SSO_INLINE_POLICY_NAME)
            .bind(doc),
        )
        .await?;
    }
    Ok(())
}

/// Deletes the role of a permission set in an account, if there is one.
async fn dematerialize(
    tx: &mut Tx,
    permission_set_arn: &str,
    account_id: &str,
) -> Result<(), StoreError> {
    let existing = sqlx::query(
        "SELECT role_id FROM sso_provisioned_roles WHERE account_id = $1 AND permission_set_arn = $2",
    )
    .bind(account_id)
    .bind(permission_set_arn)
    .fetch_optional(&mut **tx)
    .await
    .map_err(query_err("reading provisioned role"))?;
    let Some(row) = existing else { return Ok(()) };
    let role_id: String = row
        .try_get("role_id")
        .map_err(query_err("reading provisioned role"))?;
    for sql in [
        "DELETE FROM role_policy_attachments WHERE role_id = $1",
        "DELETE FROM role_inline_policies WHERE role_id = $1",
        "DELETE FROM sso_provisioned_roles WHERE role_id = $1",
        "DELETE FROM iam_roles WHERE role_id = $1",
    ] {
        exec(
            tx,
            "deleting provisioned role",
            sqlx::query(sql).bind(&role_id),
        )
        .await?;
    }
    Ok(())
}

/// Re-establishes the rule for one (set, account): a role while assignments
/// remain, none otherwise.
async fn reconcile(tx: &mut Tx, ps: &PermissionSet, account_id: &str) -> Result<(), CenterError> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM sso_account_assignments WHERE account_id = $1 AND permission_set_arn = $2",
    )
    .bind(account_id)
    .bind(&ps.permission_set_arn)
    .fetch_one(&mut **tx)
    .await
    .map_err(query_err("counting assignments"))?;
    let n: i64 = row.try_get(0).map_err(query_err("counting assignments"))?;
    if n > 0 {
        materialize(tx, ps, account_id).await
    } else {
        Ok(dematerialize(tx, &ps.permission_set_arn, account_id).await?)
    }
}

/// Re-syncs the roles of a permission set in every account it has them.
async fn resync_all(tx: &mut Tx, ps: &PermissionSet) -> Result<Vec<String>, CenterError> {
    let found = sqlx::query(
        "SELECT DISTINCT account_id FROM sso_account_assignments WHERE permission_set_arn = $1 ORDER BY account_id",
    )
    .bind(&ps.permission_set_arn)
    .fetch_all(&mut **tx)
    .await
    .map_err(query_err("listing assigned accounts"))?;
    let accounts: Vec<String> = map_rows(&found, "listing assigned accounts", |r| {
        r.try_get::<String, _>("account_id")
    })?;
    for account in &accounts {
        materialize(tx, ps, account).await?;
    }
    Ok(accounts)
}

/// Removes every assignment of a principal, re-establishing the rule for
/// each (set, account) it touched.
async fn drop_principal_assignments(
    tx: &mut Tx,
    principal_type: &str,
    principal_id: &str,
) -> Result<(), CenterError> {
    let found = sqlx::query(&format!(
        "SELECT a.account_id, {} FROM sso_account_assignments a \
         JOIN sso_permission_sets p ON p.permission_set_arn = a.permission_set_arn \
         WHERE a.principal_type = $1 AND a.principal_id = $2",
        PS_COLUMNS
            .split(", ")
            .map(|c| format!("p.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(principal_type)
    .bind(principal_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(query_err("listing principal assignments"))?;
    let touched = map_rows(&found, "listing principal assignments", |r| {
        Ok((
            r.try_get::<String, _>("account_id")?,
            permission_set_from_row(r)?,
        ))
    })?;
    exec(
        tx,
        "deleting principal assignments",
        sqlx::query(
            "DELETE FROM sso_account_assignments WHERE principal_type = $1 AND principal_id = $2",
        )
        .bind(principal_type)
        .bind(principal_id),
    )
    .await?;
    for (account, ps) in &touched {
        reconcile(tx, ps, account).await?;
    }
    Ok(())
}

impl Store {
    async fn tx(&self) -> Result<Tx, StoreError> {
        self.write_tx()
            .await
            .map_err(query_err("starting a transaction"))
    }

    // ----- organizations -----

    /// Creates an organization managed by `account_id`, with its root's
    /// `FullAWSAccess` SCP and its Identity Center instance.
    pub async fn create_organization(
        &self,
        account_id: &str,
        name: &str,
        email: &str,
    ) -> Result<(Organization, Instance), CenterError> {
        let mut tx = self.tx().await?;
        let member = sqlx::query("SELECT 1 FROM organization_accounts WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("reading organization accounts"))?;
        if member.is_some() {
            return Err(CenterError::AlreadyInOrganization);
        }
        let now = now_ms();
        let org = Organization {
            organization_id: format!("o-{}", alnum(10)),
            management_account: account_id.to_string(),
            created_at: now,
        };
        let instance = Instance {
            instance_arn: format!("arn:aws:sso:::instance/ssoins-{}", hex16()),
            identity_store_id: format!("d-{}", alnum(10)),
            organization_id: org.organization_id.clone(),
            owner_account: account_id.to_string(),
            created_at: now,
        };
        let conflict = |e| match query_err("creating organization")(e) {
            StoreError::AlreadyExists(_) => CenterError::AlreadyInOrganization,
            other => CenterError::Store(other),
        };
        sqlx::query("INSERT INTO organizations (organization_id, management_account, created_at) VALUES ($1, $2, $3)")
            .bind(&org.organization_id)
            .bind(account_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        sqlx::query("INSERT INTO organization_accounts (account_id, organization_id, name, email, joined_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(account_id)
            .bind(&org.organization_id)
            .bind(name)
            .bind(email)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
        exec(
            &mut tx,
            "attaching FullAWSAccess",
            sqlx::query(
                "INSERT INTO organization_policy_targets (policy_id, target_id) VALUES ($1, $2)",
            )
            .bind(FULL_AWS_ACCESS_ID)
            .bind(org.root_id()),
        )
        .await?;
        exec(
            &mut tx,
            "creating instance",
            sqlx::query("INSERT INTO sso_instances (instance_arn, identity_store_id, organization_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&instance.instance_arn)
                .bind(&instance.identity_store_id)
                .bind(&org.organization_id)
                .bind(now),
        )
        .await?;
        commit(tx).await?;
        Ok((org, instance))
    }

    /// The organization an account belongs to (as manager or member).
    pub async fn organization_of(
        &self,
        account_id: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let row = sqlx::query(
            "SELECT o.organization_id, o.management_account, o.created_at FROM organizations o \
             JOIN organization_accounts a ON a.organization_id = o.organization_id WHERE a.account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading organization"))?;
        row.map(|r| org_from_row(&r))
            .transpose()
            .map_err(query_err("reading organization"))
    }

    /// Creates a member account in an organization, with the role
    /// `access_role` (AdministratorAccess, trusting the management account)
    /// through which the management account administers it, as AWS's
    /// `OrganizationAccountAccessRole`.
    pub async fn create_member_account(
        &self,
        org: &Organization,
        name: &str,
        email: &str,
        access_role: &str,
    ) -> Result<OrgAccount, CenterError> {
        let organization_id = org.organization_id.as_str();
        let mut tx = self.tx().await?;
        let taken = sqlx::query(
            "SELECT 1 FROM organization_accounts WHERE organization_id = $1 AND LOWER(email) = $2",
        )
        .bind(organization_id)
        .bind(email.to_lowercase())
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("reading organization accounts"))?;
        if taken.is_some() {
            return Err(CenterError::Conflict(format!(
                "An account with the email address {email} already exists in the organization."
            )));
        }
        let account_id = insert_account(&mut tx).await?;
        let account = OrgAccount {
            account_id,
            organization_id: organization_id.to_string(),
            name: name.to_string(),
            email: email.to_string(),
            joined_at: now_ms(),
        };
        exec(
            &mut tx,
            "adding account to organization",
            sqlx::query("INSERT INTO organization_accounts (account_id, organization_id, name, email, joined_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&account.account_id)
                .bind(organization_id)
                .bind(name)
                .bind(email)
                .bind(account.joined_at),
        )
        .await?;
        // As in AWS, FullAWSAccess is attached to every new account, so an
        // account's SCP level allows everything until an administrator
        // changes it.
        exec(
            &mut tx,
            "attaching FullAWSAccess",
            sqlx::query(
                "INSERT INTO organization_policy_targets (policy_id, target_id) VALUES ($1, $2)",
            )
            .bind(FULL_AWS_ACCESS_ID)
            .bind(&account.account_id),
        )
        .await?;
        let role_id = super::iam::unique_role_id();
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{}:root", org.management_account)},
                "Action": "sts:AssumeRole"
            }]
        })
        .to_string();
        exec(
            &mut tx,
            "creating the account access role",
            sqlx::query(
                "INSERT INTO iam_roles (role_id, account_id, name, name_key, path, description, \
                 max_session_duration, trust_policy, created_at) \
                 VALUES ($1, $2, $3, $4, '/', NULL, 3600, $5, $6)",
            )
            .bind(&role_id)
            .bind(&account.account_id)
            .bind(access_role)
            .bind(access_role.to_lowercase())
            .bind(trust)
            .bind(account.joined_at),
        )
        .await?;
        exec(
            &mut tx,
            "creating the account access role",
            sqlx::query(
                "INSERT INTO role_policy_attachments (role_id, policy_arn) VALUES ($1, $2)",
            )
            .bind(&role_id)
            .bind(crate::builtin::ADMINISTRATOR_ACCESS),
        )
        .await?;
        commit(tx).await?;
        Ok(account)
    }

    /// The accounts of an organization, by join time.
    pub async fn list_org_accounts(
        &self,
        organization_id: &str,
    ) -> Result<Vec<OrgAccount>, StoreError> {
        let found = sqlx::query(
            "SELECT account_id, organization_id, name, email, joined_at FROM organization_accounts \
             WHERE organization_id = $1 ORDER BY joined_at, account_id",
        )
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing organization accounts"))?;
        map_rows(&found, "listing organization accounts", account_from_row)
    }

    /// One account of an organization.
    pub async fn org_account(
        &self,
        organization_id: &str,
        account_id: &str,
    ) -> Result<Option<OrgAccount>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, organization_id, name, email, joined_at FROM organization_accounts \
             WHERE organization_id = $1 AND account_id = $2",
        )
        .bind(organization_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading organization account"))?;
        row.map(|r| account_from_row(&r))
            .transpose()
            .map_err(query_err("reading organization account"))
    }

    // ----- service control policies -----

    /// Creates an SCP.
    pub async fn create_scp(
        &self,
        organization_id: &str,
        name: &str,
        description: &str,
        document: &str,
    ) -> Result<Scp, CenterError> {
        let scp = Scp {
            policy_id: format!("p-{}", alnum(8)),
            name: name.to_string(),
            description: description.to_string(),
            document: document.to_string(),
            aws_managed: false,
        };
        if name.eq_ignore_ascii_case("FullAWSAccess") {
            return Err(CenterError::Conflict(format!(
                "A policy named {name} already exists."
            )));
        }
        sqlx::query(
            "INSERT INTO organization_policies (policy_id, organization_id, name, description, document, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&scp.policy_id)
        .bind(organization_id)
        .bind(name)
        .bind(description)
        .bind(document)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating policy")(e) {
            StoreError::AlreadyExists(_) => CenterError::Conflict(format!("A policy named {name} already exists.")),
            other => CenterError::Store(other),
        })?;
        Ok(scp)
    }

    /// Every SCP of an organization, `FullAWSAccess` first.
    pub async fn list_scps(&self, organization_id: &str) -> Result<Vec<Scp>, StoreError> {
        let found = sqlx::query(
            "SELECT policy_id, name, description, document FROM organization_policies \
             WHERE organization_id = $1 ORDER BY name",
        )
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing policies"))?;
        let mut out = vec![Scp::full_aws_access()];
        out.extend(map_rows(&found, "listing policies", scp_from_row)?);
        Ok(out)
    }

    /// One SCP of an organization.
    pub async fn scp(
        &self,
        organization_id: &str,
        policy_id: &str,
    ) -> Result<Option<Scp>, StoreError> {
        if policy_id == FULL_AWS_ACCESS_ID {
            return Ok(Some(Scp::full_aws_access()));
        }
        let row = sqlx::query(
            "SELECT policy_id, name, description, document FROM organization_policies \
             WHERE organization_id = $1 AND policy_id = $2",
        )
        .bind(organization_id)
        .bind(policy_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading policy"))?;
        row.map(|r| scp_from_row(&r))
            .transpose()
            .map_err(query_err("reading policy"))
    }

    /// Deletes an SCP that is attached nowhere.
    pub async fn delete_scp(
        &self,
        organization_id: &str,
        policy_id: &str,
    ) -> Result<(), CenterError> {
        if policy_id == FULL_AWS_ACCESS_ID {
            return Err(CenterError::Invalid(
                "You cannot delete an AWS managed policy.".into(),
            ));
        }
        let mut tx = self.tx().await?;
        let n = exec(
            &mut tx,
            "locking policy",
            sqlx::query("UPDATE organization_policies SET name = name WHERE organization_id = $1 AND policy_id = $2")
                .bind(organization_id)
                .bind(policy_id),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::NotFound(format!(
                "We can't find a policy with the PolicyId {policy_id}."
            )));
        }
        let used = sqlx::query("SELECT 1 FROM organization_policy_targets WHERE policy_id = $1")
            .bind(policy_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("reading policy targets"))?;
        if used.is_some() {
            return Err(CenterError::Conflict(
                "The policy is attached to one or more entities. You must detach it from all roots, OUs, and accounts before performing this operation.".into(),
            ));
        }
        exec(
            &mut tx,
            "deleting policy",
            sqlx::query("DELETE FROM organization_policies WHERE policy_id = $1").bind(policy_id),
        )
        .await?;
        commit(tx).await?;
        Ok(())
    }

    /// Whether `target` is the organization's root or one of its accounts.
    async fn check_target(&self, org: &Organization, target: &str) -> Result<(), CenterError> {
        if target == org.root_id()
            || self
                .org_account(&org.organization_id, target)
                .await?
                .is_some()
        {
            Ok(())
        } else {
            Err(CenterError::NotFound(format!(
                "We can't find a root, OU, account, or policy with the TargetId {target}."
            )))
        }
    }

    /// Attaches an SCP to the root or an account; `Conflict` if it already is.
    pub async fn attach_scp(
        &self,
        org: &Organization,
        policy_id: &str,
        target: &str,
    ) -> Result<(), CenterError> {
        if self.scp(&org.organization_id, policy_id).await?.is_none() {
            return Err(CenterError::NotFound(format!(
                "We can't find a policy with the PolicyId {policy_id}."
            )));
        }
        self.check_target(org, target).await?;
        sqlx::query(
            "INSERT INTO organization_policy_targets (policy_id, target_id) VALUES ($1, $2)",
        )
        .bind(policy_id)
        .bind(target)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("attaching policy")(e) {
            StoreError::AlreadyExists(_) => CenterError::Conflict(
                "The selected policy is already attached to the specified target.".into(),
            ),
            other => CenterError::Store(other),
        })?;
        Ok(())
    }

    /// Detaches an SCP; `Invalid` when it is the target's last one (every
    /// target keeps at least one SCP, as in AWS: with none, its principals
    /// could do nothing).
    pub async fn detach_scp(
        &self,
        org: &Organization,
        policy_id: &str,
        target: &str,
    ) -> Result<(), CenterError> {
        if self.scp(&org.organization_id, policy_id).await?.is_none() {
            return Err(CenterError::NotFound(format!(
                "We can't find a policy with the PolicyId {policy_id}."
            )));
        }
        self.check_target(org, target).await?;
        let mut tx = self.tx().await?;
        let n = exec(
            &mut tx,
            "detaching policy",
            sqlx::query(
                "DELETE FROM organization_policy_targets WHERE policy_id = $1 AND target_id = $2",
            )
            .bind(policy_id)
            .bind(target),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::Conflict(
                "The policy isn't attached to the specified target in the specified root.".into(),
            ));
        }
        let row =
            sqlx::query("SELECT COUNT(*) FROM organization_policy_targets WHERE target_id = $1")
                .bind(target)
                .fetch_one(&mut *tx)
                .await
                .map_err(query_err("counting policies"))?;
        let left: i64 = row.try_get(0).map_err(query_err("counting policies"))?;
        if left == 0 {
            return Err(CenterError::Invalid(
                "You cannot remove the last service control policy from a root, OU or account."
                    .into(),
            ));
        }
        commit(tx).await?;
        Ok(())
    }

    /// The SCPs attached directly to a target.
    pub async fn scps_for_target(
        &self,
        organization_id: &str,
        target: &str,
    ) -> Result<Vec<Scp>, StoreError> {
        let found = sqlx::query("SELECT policy_id FROM organization_policy_targets WHERE target_id = $1 ORDER BY policy_id")
            .bind(target)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading policy targets"))?;
        let ids = map_rows(&found, "reading policy targets", |r| {
            r.try_get::<String, _>("policy_id")
        })?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(p) = self.scp(organization_id, &id).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The SCP levels that apply to a principal of `account_id`: the root's
    /// policies, then the account's. `None` when SCPs do not apply: the
    /// account is in no organization, or it is the management account.
    pub async fn scp_levels(&self, account_id: &str) -> Result<Option<Vec<Vec<Scp>>>, StoreError> {
        let Some(org) = self.organization_of(account_id).await? else {
            return Ok(None);
        };
        if org.management_account == account_id {
            return Ok(None);
        }
        let root = self
            .scps_for_target(&org.organization_id, &org.root_id())
            .await?;
        let own = self
            .scps_for_target(&org.organization_id, account_id)
            .await?;
        Ok(Some(vec![root, own]))
    }

    // ----- instances -----

    /// The instance of the organization `account_id` manages or belongs to.
    pub async fn instance_of(&self, account_id: &str) -> Result<Option<Instance>, StoreError> {
        let row = sqlx::query(&format!(
            "{INSTANCE_SELECT} JOIN organization_accounts a ON a.organization_id = i.organization_id \
             WHERE a.account_id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading instance"))?;
        row.map(|r| instance_from_row(&r))
            .transpose()
            .map_err(query_err("reading instance"))
    }

    /// The instance by its identity store's ID.
    pub async fn instance_by_store(
        &self,
        identity_store_id: &str,
    ) -> Result<Option<Instance>, StoreError> {
        let row = sqlx::query(&format!("{INSTANCE_SELECT} WHERE i.identity_store_id = $1"))
            .bind(identity_store_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading instance"))?;
        row.map(|r| instance_from_row(&r))
            .transpose()
            .map_err(query_err("reading instance"))
    }

    /// The instance by its ARN.
    pub async fn instance_by_arn(
        &self,
        instance_arn: &str,
    ) -> Result<Option<Instance>, StoreError> {
        let row = sqlx::query(&format!("{INSTANCE_SELECT} WHERE i.instance_arn = $1"))
            .bind(instance_arn)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading instance"))?;
        row.map(|r| instance_from_row(&r))
            .transpose()
            .map_err(query_err("reading instance"))
    }

    // ----- identity store: users -----

    /// Creates a user; `Conflict` if the user name is taken (any case).
    pub async fn create_sso_user(
        &self,
        identity_store_id: &str,
        user_name: &str,
        display_name: &str,
        email: Option<&str>,
    ) -> Result<SsoUser, CenterError> {
        let user = SsoUser {
            user_id: uuid::Uuid::new_v4().to_string(),
            identity_store_id: identity_store_id.to_string(),
            user_name: user_name.to_string(),
            display_name: display_name.to_string(),
            email: email.map(str::to_string),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO sso_users (user_id, identity_store_id, user_name, user_name_key, display_name, email, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.user_id)
        .bind(identity_store_id)
        .bind(user_name)
        .bind(user_name.to_lowercase())
        .bind(display_name)
        .bind(email)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating user")(e) {
            StoreError::AlreadyExists(_) => CenterError::Conflict(format!("Duplicate UserName: {user_name}")),
            other => CenterError::Store(other),
        })?;
        Ok(user)
    }

    /// A user of a store.
    pub async fn sso_user(
        &self,
        identity_store_id: &str,
        user_id: &str,
    ) -> Result<Option<SsoUser>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM sso_users WHERE identity_store_id = $1 AND user_id = $2"
        ))
        .bind(identity_store_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading user"))?;
        row.map(|r| user_from_row(&r))
            .transpose()
            .map_err(query_err("reading user"))
    }

    /// A user by user name (any case).
    pub async fn sso_user_by_name(
        &self,
        identity_store_id: &str,
        user_name: &str,
    ) -> Result<Option<SsoUser>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM sso_users WHERE identity_store_id = $1 AND user_name_key = $2"
        ))
        .bind(identity_store_id)
        .bind(user_name.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading user"))?;
        row.map(|r| user_from_row(&r))
            .transpose()
            .map_err(query_err("reading user"))
    }

    /// Every user of a store, by user name.
    pub async fn list_sso_users(
        &self,
        identity_store_id: &str,
    ) -> Result<Vec<SsoUser>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM sso_users WHERE identity_store_id = $1 ORDER BY user_name_key"
        ))
        .bind(identity_store_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing users"))?;
        map_rows(&found, "listing users", user_from_row)
    }

    /// Deletes a user with their memberships, MFA devices and assignments
    /// (whose roles go when no other assignment keeps them).
    pub async fn delete_sso_user(
        &self,
        identity_store_id: &str,
        user_id: &str,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let n = exec(
            &mut tx,
            "locking user",
            sqlx::query("UPDATE sso_users SET user_name = user_name WHERE identity_store_id = $1 AND user_id = $2")
                .bind(identity_store_id)
                .bind(user_id),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::NotFound(format!("USER not found: {user_id}")));
        }
        drop_principal_assignments(&mut tx, "USER", user_id).await?;
        // The user's sign-in state goes with them, and whatever they still
        // hold stops working at once.
        exec(
            &mut tx,
            "deleting user",
            sqlx::query("DELETE FROM console_preferences WHERE user_id = $1")
                .bind(format!("sso:{user_id}")),
        )
        .await?;
        for sql in [
            "UPDATE temporary_credentials SET revoked = 1 WHERE sso_user_id = $1",
            "DELETE FROM federated_console_sessions WHERE sso_user_id = $1",
            "DELETE FROM sso_portal_sessions WHERE user_id = $1",
            "DELETE FROM sso_tokens WHERE user_id = $1",
            "UPDATE sso_device_authorizations SET user_id = NULL, status = 'DENIED' WHERE user_id = $1",
            "DELETE FROM sso_signin_failures WHERE user_id = $1",
            "DELETE FROM sso_invitations WHERE user_id = $1",
            "DELETE FROM sso_group_memberships WHERE user_id = $1",
            "DELETE FROM sso_mfa_devices WHERE user_id = $1",
            "DELETE FROM sso_users WHERE user_id = $1",
        ] {
            exec(&mut tx, "deleting user", sqlx::query(sql).bind(user_id)).await?;
        }
        commit(tx).await?;
        Ok(())
    }

    // ----- identity store: groups -----

    /// Creates a group; `Conflict` if the display name is taken (any case).
    pub async fn create_sso_group(
        &self,
        identity_store_id: &str,
        display_name: &str,
        description: Option<&str>,
    ) -> Result<SsoGroup, CenterError> {
        let group = SsoGroup {
            group_id: uuid::Uuid::new_v4().to_string(),
            identity_store_id: identity_store_id.to_string(),
            display_name: display_name.to_string(),
            description: description.map(str::to_string),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO sso_groups (group_id, identity_store_id, display_name, display_name_key, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&group.group_id)
        .bind(identity_store_id)
        .bind(display_name)
        .bind(display_name.to_lowercase())
        .bind(description)
        .bind(group.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating group")(e) {
            StoreError::AlreadyExists(_) => CenterError::Conflict(format!("Duplicate GroupDisplayName: {display_name}")),
            other => CenterError::Store(other),
        })?;
        Ok(group)
    }

    /// A group of a store.
    pub async fn sso_group(
        &self,
        identity_store_id: &str,
        group_id: &str,
    ) -> Result<Option<SsoGroup>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM sso_groups WHERE identity_store_id = $1 AND group_id = $2"
        ))
        .bind(identity_store_id)
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading group"))?;
        row.map(|r| group_from_row(&r))
            .transpose()
            .map_err(query_err("reading group"))
    }

    /// A group by display name (any case).
    pub async fn sso_group_by_name(
        &self,
        identity_store_id: &str,
        display_name: &str,
    ) -> Result<Option<SsoGroup>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM sso_groups WHERE identity_store_id = $1 AND display_name_key = $2"
        ))
        .bind(identity_store_id)
        .bind(display_name.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading group"))?;
        row.map(|r| group_from_row(&r))
            .transpose()
            .map_err(query_err("reading group"))
    }

    /// Every group of a store, by display name.
    pub async fn list_sso_groups(
        &self,
        identity_store_id: &str,
    ) -> Result<Vec<SsoGroup>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM sso_groups WHERE identity_store_id = $1 ORDER BY display_name_key"
        ))
        .bind(identity_store_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing groups"))?;
        map_rows(&found, "listing groups", group_from_row)
    }

    /// Deletes a group with its memberships and assignments.
    pub async fn delete_sso_group(
        &self,
        identity_store_id: &str,
        group_id: &str,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let n = exec(
            &mut tx,
            "locking group",
            sqlx::query("UPDATE sso_groups SET display_name = display_name WHERE identity_store_id = $1 AND group_id = $2")
                .bind(identity_store_id)
                .bind(group_id),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::NotFound(format!(
                "GROUP not found: {group_id}"
            )));
        }
        drop_principal_assignments(&mut tx, "GROUP", group_id).await?;
        for sql in [
            "DELETE FROM sso_group_memberships WHERE group_id = $1",
            "DELETE FROM sso_groups WHERE group_id = $1",
        ] {
            exec(&mut tx, "deleting group", sqlx::query(sql).bind(group_id)).await?;
        }
        commit(tx).await?;
        Ok(())
    }

    // ----- identity store: memberships -----

    /// Adds a user to a group; `Conflict` if already a member.
    pub async fn create_membership(
        &self,
        identity_store_id: &str,
        group_id: &str,
        user_id: &str,
    ) -> Result<Membership, CenterError> {
        if self.sso_group(identity_store_id, group_id).await?.is_none() {
            return Err(CenterError::NotFound(format!(
                "GROUP not found: {group_id}"
            )));
        }
        if self.sso_user(identity_store_id, user_id).await?.is_none() {
            return Err(CenterError::NotFound(format!("USER not found: {user_id}")));
        }
        let m = Membership {
            membership_id: uuid::Uuid::new_v4().to_string(),
            group_id: group_id.to_string(),
            user_id: user_id.to_string(),
        };
        sqlx::query("INSERT INTO sso_group_memberships (membership_id, group_id, user_id) VALUES ($1, $2, $3)")
            .bind(&m.membership_id)
            .bind(group_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(|e| match query_err("creating membership")(e) {
                StoreError::AlreadyExists(_) => CenterError::Conflict(format!("Member {user_id} is already in group {group_id}")),
                other => CenterError::Store(other),
            })?;
        Ok(m)
    }

    /// The memberships of a group.
    pub async fn list_memberships(&self, group_id: &str) -> Result<Vec<Membership>, StoreError> {
        let found = sqlx::query("SELECT membership_id, group_id, user_id FROM sso_group_memberships WHERE group_id = $1 ORDER BY membership_id")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing memberships"))?;
        map_rows(&found, "listing memberships", membership_from_row)
    }

    /// Removes a membership of a group of the store.
    pub async fn delete_membership(
        &self,
        identity_store_id: &str,
        membership_id: &str,
    ) -> Result<(), CenterError> {
        let n = sqlx::query(
            "DELETE FROM sso_group_memberships WHERE membership_id = $1 AND group_id IN \
             (SELECT group_id FROM sso_groups WHERE identity_store_id = $2)",
        )
        .bind(membership_id)
        .bind(identity_store_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("deleting membership"))?
        .rows_affected();
        if n == 0 {
            return Err(CenterError::NotFound(format!(
                "GROUP_MEMBERSHIP not found: {membership_id}"
            )));
        }
        Ok(())
    }

    // ----- permission sets -----

    /// Creates a permission set; `Conflict` if the name is taken.
    pub async fn create_permission_set(
        &self,
        instance_arn: &str,
        name: &str,
        description: Option<&str>,
        session_duration_secs: i64,
        relay_state: Option<&str>,
    ) -> Result<PermissionSet, CenterError> {
        let suffix = instance_arn.rsplit('/').next().unwrap_or(instance_arn);
        let ps = PermissionSet {
            permission_set_arn: format!("arn:aws:sso:::permissionSet/{suffix}/ps-{}", hex16()),
            instance_arn: instance_arn.to_string(),
            name: name.to_string(),
            description: description.map(str::to_string),
            session_duration_secs,
            relay_state: relay_state.map(str::to_string),
            inline_policy: None,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO sso_permission_sets (permission_set_arn, instance_arn, name, name_key, description, \
             session_duration_secs, relay_state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&ps.permission_set_arn)
        .bind(instance_arn)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(description)
        .bind(session_duration_secs)
        .bind(relay_state)
        .bind(ps.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating permission set")(e) {
            StoreError::AlreadyExists(_) => CenterError::Conflict(format!("PermissionSet with name {name} already exists.")),
            other => CenterError::Store(other),
        })?;
        Ok(ps)
    }

    /// A permission set of an instance.
    pub async fn permission_set(
        &self,
        instance_arn: &str,
        arn: &str,
    ) -> Result<Option<PermissionSet>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PS_COLUMNS} FROM sso_permission_sets WHERE instance_arn = $1 AND permission_set_arn = $2"
        ))
        .bind(instance_arn)
        .bind(arn)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading permission set"))?;
        row.map(|r| permission_set_from_row(&r))
            .transpose()
            .map_err(query_err("reading permission set"))
    }

    /// Every permission set of an instance, by creation.
    pub async fn list_permission_sets(
        &self,
        instance_arn: &str,
    ) -> Result<Vec<PermissionSet>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {PS_COLUMNS} FROM sso_permission_sets WHERE instance_arn = $1 ORDER BY created_at, permission_set_arn"
        ))
        .bind(instance_arn)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing permission sets"))?;
        map_rows(&found, "listing permission sets", permission_set_from_row)
    }

    /// Deletes a permission set with no assignments.
    pub async fn delete_permission_set(
        &self,
        instance_arn: &str,
        arn: &str,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        lock_permission_set(&mut tx, instance_arn, arn).await?;
        let used =
            sqlx::query("SELECT 1 FROM sso_account_assignments WHERE permission_set_arn = $1")
                .bind(arn)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("reading assignments"))?;
        if used.is_some() {
            return Err(CenterError::Conflict(
                "The permission set is assigned to one or more accounts; delete its account assignments first.".into(),
            ));
        }
        for sql in [
            "DELETE FROM sso_permission_set_policies WHERE permission_set_arn = $1",
            "DELETE FROM sso_permission_sets WHERE permission_set_arn = $1",
        ] {
            exec(
                &mut tx,
                "deleting permission set",
                sqlx::query(sql).bind(arn),
            )
            .await?;
        }
        commit(tx).await?;
        Ok(())
    }

    /// Attaches an AWS managed policy to a permission set and its roles.
    pub async fn attach_permission_set_policy(
        &self,
        instance_arn: &str,
        arn: &str,
        policy_arn: &str,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let ps = lock_permission_set(&mut tx, instance_arn, arn).await?;
        let policies = ps_policies(&mut tx, arn).await?;
        if policies.iter().any(|p| p == policy_arn) {
            return Err(CenterError::Conflict(format!(
                "Managed policy {policy_arn} is already attached to the permission set."
            )));
        }
        if policies.len() >= 10 {
            return Err(CenterError::Invalid(
                "Cannot attach more than 10 managed policies to a permission set.".into(),
            ));
        }
        exec(
            &mut tx,
            "attaching policy",
            sqlx::query("INSERT INTO sso_permission_set_policies (permission_set_arn, policy_arn) VALUES ($1, $2)")
                .bind(arn)
                .bind(policy_arn),
        )
        .await?;
        resync_all(&mut tx, &ps).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Detaches a managed policy from a permission set and its roles.
    pub async fn detach_permission_set_policy(
        &self,
        instance_arn: &str,
        arn: &str,
        policy_arn: &str,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let ps = lock_permission_set(&mut tx, instance_arn, arn).await?;
        let n = exec(
            &mut tx,
            "detaching policy",
            sqlx::query("DELETE FROM sso_permission_set_policies WHERE permission_set_arn = $1 AND policy_arn = $2")
                .bind(arn)
                .bind(policy_arn),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::NotFound(format!(
                "Managed policy {policy_arn} is not attached to the permission set."
            )));
        }
        resync_all(&mut tx, &ps).await?;
        commit(tx).await?;
        Ok(())
    }

    /// The managed policies of a permission set.
    pub async fn permission_set_policies(&self, arn: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.tx().await?;
        let out = ps_policies(&mut tx, arn).await?;
        commit(tx).await?;
        Ok(out)
    }

    /// Sets (`Some`) or deletes (`None`) the inline policy of a permission
    /// set and its roles.
    pub async fn set_permission_set_inline(
        &self,
        instance_arn: &str,
        arn: &str,
        document: Option<&str>,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let mut ps = lock_permission_set(&mut tx, instance_arn, arn).await?;
        exec(
            &mut tx,
            "setting inline policy",
            sqlx::query(
                "UPDATE sso_permission_sets SET inline_policy = $1 WHERE permission_set_arn = $2",
            )
            .bind(document)
            .bind(arn),
        )
        .await?;
        ps.inline_policy = document.map(str::to_string);
        resync_all(&mut tx, &ps).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Re-syncs a permission set's roles in one account (which must have an
    /// assignment of it) or in all; the accounts synced.
    pub async fn provision_permission_set(
        &self,
        instance_arn: &str,
        arn: &str,
        account: Option<&str>,
    ) -> Result<Vec<String>, CenterError> {
        let mut tx = self.tx().await?;
        let ps = lock_permission_set(&mut tx, instance_arn, arn).await?;
        let accounts = match account {
            None => resync_all(&mut tx, &ps).await?,
            Some(account) => {
                reconcile(&mut tx, &ps, account).await?;
                vec![account.to_string()]
            }
        };
        commit(tx).await?;
        Ok(accounts)
    }

    // ----- assignments -----

    /// Assigns a principal a permission set in an account (again is
    /// harmless) and materializes the role.
    pub async fn create_assignment(
        &self,
        instance: &Instance,
        a: &Assignment,
    ) -> Result<(), CenterError> {
        if self
            .org_account(&instance.organization_id, &a.account_id)
            .await?
            .is_none()
        {
            return Err(CenterError::NotFound(format!(
                "Account {} is not a member of the organization.",
                a.account_id
            )));
        }
        let known = match a.principal_type.as_str() {
            "USER" => self
                .sso_user(&instance.identity_store_id, &a.principal_id)
                .await?
                .is_some(),
            "GROUP" => self
                .sso_group(&instance.identity_store_id, &a.principal_id)
                .await?
                .is_some(),
            other => {
                return Err(CenterError::Invalid(format!(
                    "PrincipalType {other} is not valid."
                )))
            }
        };
        if !known {
            return Err(CenterError::NotFound(format!(
                "{} {} does not exist in the identity store.",
                a.principal_type, a.principal_id
            )));
        }
        let mut tx = self.tx().await?;
        let ps =
            lock_permission_set(&mut tx, &instance.instance_arn, &a.permission_set_arn).await?;
        let existing = sqlx::query(
            "SELECT 1 FROM sso_account_assignments WHERE account_id = $1 AND permission_set_arn = $2 \
             AND principal_type = $3 AND principal_id = $4",
        )
        .bind(&a.account_id)
        .bind(&a.permission_set_arn)
        .bind(&a.principal_type)
        .bind(&a.principal_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("reading assignments"))?;
        if existing.is_none() {
            exec(
                &mut tx,
                "creating assignment",
                sqlx::query(
                    "INSERT INTO sso_account_assignments (account_id, permission_set_arn, principal_type, principal_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&a.account_id)
                .bind(&a.permission_set_arn)
                .bind(&a.principal_type)
                .bind(&a.principal_id)
                .bind(now_ms()),
            )
            .await?;
        }
        materialize(&mut tx, &ps, &a.account_id).await?;
        commit(tx).await?;
        Ok(())
    }

    /// Removes an assignment; the role goes with the set's last assignment
    /// in the account.
    pub async fn delete_assignment(
        &self,
        instance: &Instance,
        a: &Assignment,
    ) -> Result<(), CenterError> {
        let mut tx = self.tx().await?;
        let ps =
            lock_permission_set(&mut tx, &instance.instance_arn, &a.permission_set_arn).await?;
        let n = exec(
            &mut tx,
            "deleting assignment",
            sqlx::query(
                "DELETE FROM sso_account_assignments WHERE account_id = $1 AND permission_set_arn = $2 \
                 AND principal_type = $3 AND principal_id = $4",
            )
            .bind(&a.account_id)
            .bind(&a.permission_set_arn)
            .bind(&a.principal_type)
            .bind(&a.principal_id),
        )
        .await?;
        if n == 0 {
            return Err(CenterError::NotFound(
                "The account assignment does not exist.".into(),
            ));
        }
        reconcile(&mut tx, &ps, &a.account_id).await?;
        commit(tx).await?;
        Ok(())
    }

    /// The assignments of a permission set in an account.
    pub async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, StoreError> {
        let found = sqlx::query(
            "SELECT account_id, permission_set_arn, principal_type, principal_id FROM sso_account_assignments \
             WHERE account_id = $1 AND permission_set_arn = $2 ORDER BY created_at, principal_id",
        )
        .bind(account_id)
        .bind(permission_set_arn)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing assignments"))?;
        map_rows(&found, "listing assignments", assignment_from_row)
    }

    /// The accounts a permission set has a role in.
    pub async fn provisioned_accounts(
        &self,
        permission_set_arn: &str,
    ) -> Result<Vec<String>, StoreError> {
        let found = sqlx::query("SELECT account_id FROM sso_provisioned_roles WHERE permission_set_arn = $1 ORDER BY account_id")
            .bind(permission_set_arn)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing provisioned accounts"))?;
        map_rows(&found, "listing provisioned accounts", |r| {
            r.try_get("account_id")
        })
    }

    /// The role ID a permission set has in an account, if provisioned.
    pub async fn provisioned_role(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT role_id FROM sso_provisioned_roles WHERE account_id = $1 AND permission_set_arn = $2")
            .bind(account_id)
            .bind(permission_set_arn)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading provisioned role"))?;
        row.map(|r| r.try_get("role_id"))
            .transpose()
            .map_err(query_err("reading provisioned role"))
    }

    // ----- request statuses -----

    /// Records the status answered for a request; its ID.
    pub async fn record_sso_request(
        &self,
        instance_arn: &str,
        kind: &str,
        request_id: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sso_requests (request_id, instance_arn, kind, status, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(request_id)
            .bind(instance_arn)
            .bind(kind)
            .bind(status)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(query_err("recording request"))?;
        Ok(())
    }

    /// The status recorded for a request of an instance.
    pub async fn sso_request(
        &self,
        instance_arn: &str,
        kind: &str,
        request_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM sso_requests WHERE request_id = $1 AND instance_arn = $2 AND kind = $3")
            .bind(request_id)
            .bind(instance_arn)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading request"))?;
        row.map(|r| r.try_get("status"))
            .transpose()
            .map_err(query_err("reading request"))
    }

    // ----- for sign-in -----

    /// The roles an identity-store user may use, through assignments to
    /// them or to their groups; each (account, permission set) once.
    pub async fn sso_user_roles(&self, user_id: &str) -> Result<Vec<AssignedRole>, StoreError> {
        let found = sqlx::query(
            "SELECT DISTINCT a.account_id, oa.name AS account_name, oa.email AS account_email, \
             p.permission_set_arn, p.name AS permission_set_name, r.role_id, r.name AS role_name, \
             p.session_duration_secs \
             FROM sso_account_assignments a \
             JOIN sso_permission_sets p ON p.permission_set_arn = a.permission_set_arn \
             JOIN sso_provisioned_roles pr ON pr.account_id = a.account_id AND pr.permission_set_arn = a.permission_set_arn \
             JOIN iam_roles r ON r.role_id = pr.role_id \
             JOIN organization_accounts oa ON oa.account_id = a.account_id \
             WHERE (a.principal_type = 'USER' AND a.principal_id = $1) \
                OR (a.principal_type = 'GROUP' AND a.principal_id IN \
                    (SELECT group_id FROM sso_group_memberships WHERE user_id = $1)) \
             ORDER BY a.account_id, p.permission_set_arn",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing a user's roles"))?;
        map_rows(&found, "listing a user's roles", |r| {
            Ok(AssignedRole {
                account_id: r.try_get("account_id")?,
                account_name: r.try_get("account_name")?,
                account_email: r.try_get("account_email")?,
                permission_set_arn: r.try_get("permission_set_arn")?,
                permission_set_name: r.try_get("permission_set_name")?,
                role_id: r.try_get("role_id")?,
                role_name: r.try_get("role_name")?,
                session_duration_secs: r.try_get("session_duration_secs")?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_durations() {
        assert_eq!(parse_session_duration("PT1H").ok(), Some(3_600));
        assert_eq!(parse_session_duration("PT12H").ok(), Some(43_200));
        assert_eq!(parse_session_duration("PT1H30M").ok(), Some(5_400));
        assert_eq!(parse_session_duration("PT90M").ok(), Some(5_400));
        for bad in ["PT30M", "PT13H", "P1D", "1H", "PT", "PTH", "PT1X", "PT1H30"] {
            assert!(parse_session_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_session_duration(3_600), "PT1H");
        assert_eq!(format_session_duration(5_400), "PT1H30M");
    }

    #[test]
    fn role_names_are_stable() {
        let a = sso_role_name(
            "PowerUser",
            "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
            "111111111111",
        );
        assert_eq!(
            a,
            sso_role_name(
                "PowerUser",
                "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
                "111111111111"
            )
        );
        assert_ne!(
            a,
            sso_role_name(
                "PowerUser",
                "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
                "222222222222"
            )
        );
        assert!(
            a.starts_with("AWSReservedSSO_PowerUser_")
                && a.len() == "AWSReservedSSO_PowerUser_".len() + 16
        );
    }
}
