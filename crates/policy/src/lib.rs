//! The IAM policy language of Seashell: parse, validate and evaluate JSON
//! policy documents exactly as AWS IAM does.
//!
//! The crate is pure: no I/O, no async, no global state. The server parses
//! each stored policy once and evaluates every request against the parsed
//! documents:
//!
//! ```
//! use seashell_policy::{evaluate, parse, Context, PolicyKind, PolicySet, Request, Verdict};
//!
//! let deny_transfers = parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [
//!         {"Sid": "AllowCloudShell", "Effect": "Allow", "Action": "cloudshell:*", "Resource": "*"},
//!         {"Sid": "DenyUploadDownload", "Effect": "Deny",
//!          "Action": ["cloudshell:GetFileDownloadUrls", "cloudshell:GetFileUploadUrls"],
//!          "Resource": "*"}
//!     ]
//! }"#, PolicyKind::Managed)?;
//!
//! let policies = PolicySet::new().identity("CloudShellNoTransfers", &deny_transfers);
//! let mut context = Context::new();
//! context.insert("aws:username", "alice");
//! let request = Request::new(
//!     "arn:aws:iam::123456789012:user/alice",
//!     "cloudshell:GetFileUploadUrls",
//!     "*",
//!     &context,
//! );
//! let decision = evaluate(&request, &policies);
//! assert_eq!(decision.verdict, Verdict::ExplicitDeny);
//! assert_eq!(decision.statement().and_then(|s| s.sid), Some("DenyUploadDownload"));
//! assert_eq!(
//!     decision.denial_phrase(request.action),
//!     "with an explicit deny in an identity-based policy"
//! );
//! # Ok::<(), seashell_policy::PolicyError>(())
//! ```
//!
//! - [`parse`] validates a document for a [`PolicyKind`] (which sets the size
//!   limit and whether `Principal`/`Resource` are required) and reports every
//!   problem with a JSON pointer to it.
//! - [`evaluate`] applies IAM's evaluation logic to a [`Request`] and a
//!   [`PolicySet`] (identity, resource/trust, boundary, session and service
//!   control policies) and returns a [`Decision`] naming what decided it.
//! - [`explain`] adds every matching statement and the context keys the
//!   request lacked, for policy simulation.

#![warn(missing_docs)]

mod arn;
mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod limits;
mod parse;
mod pattern;

pub use condition::{Condition, Operator, OperatorKind, SetQualifier};
pub use context::{Context, Principal, Request};
pub use document::{
    ActionBlock, Effect, PolicyDocument, PrincipalBlock, PrincipalType, ResourceBlock, Statement,
    Version,
};
pub use error::{ErrorKind, PolicyError, ValidationError};
pub use evaluate::{
    evaluate, explain, Decision, Explanation, NamedPolicy, PolicySet, PolicyType, Reason,
    StatementRef, Verdict,
};
pub use limits::{policy_size, PolicyKind};
pub use parse::parse;
