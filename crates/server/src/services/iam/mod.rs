//! IAM (`/iam/`, Query protocol, version 2010-05-08): users, groups, roles,
//! access keys, login profiles, managed and inline policies, policy
//! simulation and account aliases.
//!
//! Each operation is authorized with its `iam:` action on the resource ARN
//! AWS uses for it, before anything is read for the caller or changed.

mod account;
mod attached;
mod groups;
mod inline;
mod keys;
mod mfa;
pub mod params;
mod policies;
mod roles;
mod shapes;
mod simulate;
mod users;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::protocol::query::{reply, QueryRequest};
use crate::protocol::xml::XmlWriter;
use crate::services::Handled;
use crate::state::AppState;
use crate::store::iam::IamError;
use crate::store::{StoreError, User};

/// The XML namespace of IAM replies.
pub const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The API version.
pub const VERSION: &str = "2010-05-08";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "iam.amazonaws.com";

/// One IAM request being handled.
pub(crate) struct Ctx<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    info: &'a RequestInfo,
    req: &'a QueryRequest,
    request_id: &'a str,
}

/// What an operation gives back: its reply and, for changes, what the audit
/// record's `responseElements` say.
pub(crate) struct Reply {
    body: String,
    response: Option<Value>,
}

impl<'a> Ctx<'a> {
    /// The caller's account, which every IAM operation acts in.
    fn account(&self) -> &str {
        &self.caller.account_id
    }

    fn store(&self) -> &crate::store::Store {
        &self.state.store
    }

    /// Authorizes the operation's action on `resource`.
    async fn authorize(&self, resource: &str) -> Result<(), ApiError> {
        self.authorize_with(resource, &[]).await
    }

    /// Authorizes with extra condition keys.
    async fn authorize_with(&self, resource: &str, extra: &[(&str, &str)]) -> Result<(), ApiError> {
        let action = format!("iam:{}", self.req.action);
        authz::authorize(
            self.store(),
            self.caller,
            self.info,
            &action,
            resource,
            extra,
        )
        .await
    }

    /// A reply with a result element written by `result`.
    fn reply(&self, result: impl FnOnce(&mut XmlWriter)) -> Reply {
        Reply {
            body: reply(&self.req.action, XMLNS, self.request_id, result),
            response: None,
        }
    }

    /// A reply with an empty result, for operations that return nothing.
    fn empty(&self) -> Reply {
        let action = &self.req.action;
        let mut w = XmlWriter::new();
        let response = format!("{action}Response");
        w.open(&response, Some(XMLNS))
            .open("ResponseMetadata", None)
            .element("RequestId", self.request_id)
            .close("ResponseMetadata")
            .close(&response);
        Reply {
            body: w.finish(),
            response: None,
        }
    }

    /// `arn:aws:iam::<account>:<kind><path><name>`, the ARN of an entity
    /// that may not exist (AWS authorizes against it all the same).
    fn arn(&self, kind: &str, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:{kind}{path}{name}", self.account())
    }

    /// The user named by `UserName`, or the caller when it is absent
    /// (operations on "your own" user). Returns the user's ARN for
    /// authorization and the user if they exist.
    async fn user_or_caller(&self) -> Result<(String, Option<User>), ApiError> {
        match self.req.param("UserName") {
            Some(name) => {
                params::check_name(name, "userName", 128)?;
                let user = self
                    .store()
                    .user_by_name(self.account(), name)
                    .await
                    .map_err(internal)?;
                let arn = user
                    .as_ref()
                    .map(User::arn)
                    .unwrap_or_else(|| self.arn("user", "/", name));
                Ok((arn, user))
            }
            None if self.caller.role.is_some() => Err(ApiError::validation(
                "Must specify userName when calling with non-User credentials",
            )),
            None => {
                let user = self
                    .store()
                    .user_by_name(self.account(), &self.caller.user_name)
                    .await
                    .map_err(internal)?;
                Ok((self.caller.arn.clone(), user))
            }
        }
    }

    /// The user named by the required `UserName`: its ARN and the user if
    /// they exist.
    async fn named_user(&self) -> Result<(String, Option<User>), ApiError> {
        params::required(self.req, "UserName", "userName")?;
        self.user_or_caller().await
    }
}

/// `NoSuchEntity` for a user.
fn no_such_user(name: &str) -> ApiError {
    no_such_entity(format!("The user with name {name} cannot be found."))
}

/// `404 NoSuchEntity`.
fn no_such_entity(message: impl Into<String>) -> ApiError {
    ApiError::new(http::StatusCode::NOT_FOUND, "NoSuchEntity", message)
}

/// `400 InvalidInput`.
fn invalid_input(message: impl Into<String>) -> ApiError {
    ApiError::new(http::StatusCode::BAD_REQUEST, "InvalidInput", message)
}

/// `400 MalformedPolicyDocument` with the engine's explanation.
fn malformed(e: &seashell_policy::PolicyError) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "MalformedPolicyDocument",
        e.to_string(),
    )
}

fn internal(e: StoreError) -> ApiError {
    ApiError::internal(&e)
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> ApiError {
        use http::StatusCode as S;
        match e {
            IamError::NotFound(m) => no_such_entity(m),
            IamError::AlreadyExists(m) => ApiError::new(S::CONFLICT, "EntityAlreadyExists", m),
            IamError::Conflict(m) => ApiError::new(S::CONFLICT, "DeleteConflict", m),
            IamError::Limit(m) => ApiError::new(S::CONFLICT, "LimitExceeded", m),
            IamError::Store(e) => ApiError::internal(&e),
        }
    }
}

/// Whether an operation only reads.
fn read_only(action: &str) -> bool {
    action.starts_with("Get") || action.starts_with("List") || action.starts_with("Simulate")
}

/// Handles one IAM operation for an authenticated caller.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    req: &QueryRequest,
    request_id: &str,
) -> Result<Handled, ApiError> {
    let ctx = Ctx {
        state,
        caller,
        info,
        req,
        request_id,
    };
    let reply = match req.action.as_str() {
        "CreateUser" => users::create(&ctx).await,
        "GetUser" => users::get(&ctx).await,
        "ListUsers" => users::list(&ctx).await,
        "UpdateUser" => users::update(&ctx).await,
        "DeleteUser" => users::delete(&ctx).await,
        "CreateLoginProfile" => users::create_login_profile(&ctx).await,
        "GetLoginProfile" => users::get_login_profile(&ctx).await,
        "UpdateLoginProfile" => users::update_login_profile(&ctx).await,
        "DeleteLoginProfile" => users::delete_login_profile(&ctx).await,
        "CreateAccessKey" => keys::create(&ctx).await,
        "ListAccessKeys" => keys::list(&ctx).await,
        "UpdateAccessKey" => keys::update(&ctx).await,
        "DeleteAccessKey" => keys::delete(&ctx).await,
        "CreateGroup" => groups::create(&ctx).await,
        "GetGroup" => groups::get(&ctx).await,
        "ListGroups" => groups::list(&ctx).await,
        "DeleteGroup" => groups::delete(&ctx).await,
        "AddUserToGroup" => groups::add_user(&ctx).await,
        "RemoveUserFromGroup" => groups::remove_user(&ctx).await,
        "ListGroupsForUser" => groups::list_for_user(&ctx).await,
        "CreatePolicy" => policies::create(&ctx).await,
        "GetPolicy" => policies::get(&ctx).await,
        "ListPolicies" => policies::list(&ctx).await,
        "DeletePolicy" => policies::delete(&ctx).await,
        "CreatePolicyVersion" => policies::create_version(&ctx).await,
        "GetPolicyVersion" => policies::get_version(&ctx).await,
        "ListPolicyVersions" => policies::list_versions(&ctx).await,
        "DeletePolicyVersion" => policies::delete_version(&ctx).await,
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            attached::attach(&ctx).await
        }
        "DetachUserPolicy" | "DetachGroupPolicy" | "DetachRolePolicy" => {
            attached::detach(&ctx).await
        }
        "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" | "ListAttachedRolePolicies" => {
            attached::list(&ctx).await
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => inline::put(&ctx).await,
        "GetUserPolicy" | "GetGroupPolicy" | "GetRolePolicy" => inline::get(&ctx).await,
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => inline::delete(&ctx).await,
        "ListUserPolicies" | "ListGroupPolicies" | "ListRolePolicies" => inline::list(&ctx).await,
        "CreateRole" => roles::create(&ctx).await,
        "GetRole" => roles::get(&ctx).await,
        "ListRoles" => roles::list(&ctx).await,
        "DeleteRole" => roles::delete(&ctx).await,
        "UpdateAssumeRolePolicy" => roles::update_trust(&ctx).await,
        "SimulatePrincipalPolicy" => simulate::principal(&ctx).await,
        "SimulateCustomPolicy" => simulate::custom(&ctx).await,
        "CreateAccountAlias" => account::create_alias(&ctx).await,
        "DeleteAccountAlias" => account::delete_alias(&ctx).await,
        "ListAccountAliases" => account::list_aliases(&ctx).await,
        "CreateVirtualMFADevice" => mfa::create(&ctx).await,
        "EnableMFADevice" => mfa::enable(&ctx).await,
        "ListMFADevices" => mfa::list(&ctx).await,
        "DeactivateMFADevice" => mfa::deactivate(&ctx).await,
        "DeleteVirtualMFADevice" => mfa::delete(&ctx).await,
        other => return Err(ApiError::invalid_action(other)),
    }?;
    Ok(Handled {
        body: reply.body,
        read_only: read_only(&req.action),
        request_parameters: request_parameters(req),
        response_elements: reply.response,
    })
}

/// The request's parameters as CloudTrail records them: lower camel case
/// names, `X.member.N` lists as arrays. Secrets among them (passwords) are
/// hidden by the audit trail's redaction.
///
/// Every parameter is recorded. One whose name does not fit the tree the
/// others made (`UserName=a` beside `UserName.X=b`, `member.1` at the top,
/// `UserName` beside `userName`) is kept under its own name in
/// [`OTHER_PARAMETERS`]: the operation reads the flat names, so dropping
/// one would let a caller hide what a call did.
pub fn request_parameters(req: &QueryRequest) -> Option<Value> {
    if req.params.is_empty() {
        return None;
    }
    let mut root = Node::Map(BTreeMap::new());
    let mut other = Map::new();
    for (key, value) in &req.params {
        let mut segments: Vec<&str> = key.split('.').collect();
        // No IAM parameter nests deeper; a deeper name is kept whole rather
        // than followed (the tree is built recursively).
        if segments.len() > MAX_PARAM_DEPTH {
            segments = vec![key.as_str()];
        }
        // The top is an object: a list there would replace every other name.
        if segments[0] != "member" && root.fits(&segments) {
            root.insert(&segments, value);
        } else {
            other.insert(key.clone(), Value::String(value.clone()));
        }
    }
    let mut tree = root.into_json();
    if !other.is_empty() {
        if let Value::Object(map) = &mut tree {
            map.insert(OTHER_PARAMETERS.to_string(), Value::Object(other));
        }
    }
    Some(tree)
}

/// Where [`request_parameters`] keeps the names that do not fit the tree.
/// It begins with a capital, which no lower-camel-cased name does.
pub const OTHER_PARAMETERS: &str = "OtherParameters";

/// The most segments of a parameter name followed into the tree
/// (`ContextEntries.member.1.ContextKeyValues.member.1` has five).
const MAX_PARAM_DEPTH: usize = 8;

/// Parameters as a tree, before they become JSON. Lists are kept by index,
/// so a sparse index (`member.1000`) costs one entry, not a thousand. An
/// empty map is a node not yet given a shape.
enum Node {
    Leaf(String),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

/// `["member", "3", rest…]` as `(3, rest)`.
fn list_index<'p>(path: &'p [&'p str]) -> Option<(usize, &'p [&'p str])> {
    match path {
        ["member", index, tail @ ..] => index.parse().ok().map(|i| (i, tail)),
        _ => None,
    }
}

impl Node {
    fn is_unshaped(&self) -> bool {
        matches!(self, Node::Map(m) if m.is_empty())
    }

    /// Whether `path` can be put here without changing the shape of what
    /// is already here.
    fn fits(&self, path: &[&str]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return self.is_unshaped();
        };
        if let Some((i, tail)) = list_index(path) {
            return match self {
                Node::List(items) => items.get(&i).is_none_or(|n| n.fits(tail)),
                node => node.is_unshaped(),
            };
        }
        match self {
            Node::Map(map) => map.get(&lower_camel(first)).is_none_or(|n| n.fits(rest)),
            _ => false,
        }
    }

    /// Puts `value` at `path` (`["ActionNames", "member", "1"]`, …), which
    /// [`fits`](Self::fits).
    fn insert(&mut self, path: &[&str], value: &str) {
        let Some((first, rest)) = path.split_first() else {
            *self = Node::Leaf(value.to_string());
            return;
        };
        if let Some((i, tail)) = list_index(path) {
            if self.is_unshaped() {
                *self = Node::List(BTreeMap::new());
            }
            if let Node::List(items) = self {
                items
                    .entry(i)
                    .or_insert_with(|| Node::Map(BTreeMap::new()))
                    .insert(tail, value);
            }
            return;
        }
        if let Node::Map(map) = self {
            map.entry(lower_camel(first))
                .or_insert_with(|| Node::Map(BTreeMap::new()))
                .insert(rest, value);
        }
    }

    fn into_json(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Map(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k, v.into_json()))
                    .collect::<Map<String, Value>>(),
            ),
            Node::List(items) => Value::Array(items.into_values().map(Node::into_json).collect()),
        }
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_as_cloudtrail_shows_them() {
        let req = QueryRequest::decode(
            "",
            b"Action=SimulateCustomPolicy&Version=2010-05-08&ActionNames.member.1=a&ActionNames.member.2=b&ContextEntries.member.1.ContextKeyName=k&ContextEntries.member.1.ContextKeyValues.member.1=v&UserName=alice",
            VERSION,
        )
        .expect("decodes");
        let v = request_parameters(&req).expect("some");
        assert_eq!(
            v,
            serde_json::json!({
                "actionNames": ["a", "b"],
                "contextEntries": [{"contextKeyName": "k", "contextKeyValues": ["v"]}],
                "userName": "alice"
            })
        );
        // Indexes sort as numbers, and a sparse one costs nothing.
        let req = QueryRequest::decode(
            "",
            b"Action=X&Version=2010-05-08&A.member.10=j&A.member.2=b&A.member.1000000=z",
            VERSION,
        )
        .expect("decodes");
        assert_eq!(
            request_parameters(&req),
            Some(serde_json::json!({"a": ["b", "j", "z"]}))
        );
        // A name that does not fit the shape the names before it (in sorted
        // order) made is kept, not dropped.
        let req = QueryRequest::decode(
            "",
            b"Action=X&Version=2010-05-08&UserName=alice&UserName.X=bob&member.1=m&A.member.1=x&A.B=y&userName=eve",
            VERSION,
        )
        .expect("decodes");
        assert_eq!(
            request_parameters(&req),
            Some(serde_json::json!({
                "a": {"b": "y"},
                "userName": "alice",
                "OtherParameters": {"A.member.1": "x", "UserName.X": "bob", "member.1": "m", "userName": "eve"}
            }))
        );
        let deep = format!("Action=X&Version=2010-05-08&{}=v", "a.".repeat(100_000));
        let req = QueryRequest::decode("", deep.as_bytes(), VERSION).expect("decodes");
        assert!(request_parameters(&req).is_some(), "no deep recursion");
    }

    #[test]
    fn read_only_operations() {
        assert!(
            read_only("GetUser") && read_only("ListUsers") && read_only("SimulateCustomPolicy")
        );
        assert!(!read_only("CreateUser") && !read_only("DeleteAccessKey"));
    }
}
