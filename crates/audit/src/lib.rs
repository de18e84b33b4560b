//! Seashell's audit trail: CloudTrail-format records of every request,
//! with secrets removed, written to durable sinks and searchable through
//! `LookupEvents`.
//!
//! - [`Record`] is a CloudTrail record (eventVersion 1.11); the server
//!   builds one per request with [`Record::api_call`], and one per console
//!   sign-in with [`ConsoleLogin`].
//! - [`redact`] removes passwords, keys, tokens and file contents from the
//!   free-form payloads; a [`RedactedRecord`] is the only thing a [`Sink`]
//!   accepts.
//! - [`JsonlSink`] appends JSON lines; [`DeliverySink`] writes
//!   CloudTrail-style gzip delivery files, journalled first so a crash loses
//!   or repeats nothing.
//! - [`lookup`] models `LookupEvents`; [`EventHistory`] is the seam to the
//!   store that answers it.
//!
//! This crate does no networking and owns no database.
//!
//! ```no_run
//! use seashell_audit::{DeliveryConfig, DeliverySink, Record, Sink, UserIdentity};
//! use serde_json::json;
//!
//! # async fn handle() -> Result<(), seashell_audit::SinkError> {
//! let sink = DeliverySink::open(DeliveryConfig::new("/var/lib/seashell")).await?;
//! let caller = UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE")
//!     .with_access_key_id("ASIAEXAMPLE");
//! let record = Record::api_call("cloudshell.amazonaws.com", "CreateEnvironment", "eu-west-1", caller)
//!     .source_ip("203.0.113.10")
//!     .user_agent("aws-cli/2.15.0")
//!     .request_id("4d1c…")
//!     .request_parameters(json!({"EnvironmentName": "default"}))
//!     .response_elements(json!({"EnvironmentId": "env-1", "Status": "CREATING"}))
//!     .build(); // secrets are removed here
//! sink.write(&record).await?; // durable on return: now acknowledge the call
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod elastic;
mod error;
pub mod history;
pub mod identity;
pub mod lookup;
pub mod record;
pub mod redact;
pub mod signin;
pub mod sink;
pub mod time_format;

pub use error::SinkError;
pub use history::{EventHistory, HistoryError, MemoryHistory};
pub use identity::{
    IdentityType, IssuerType, OnBehalfOf, SessionAttributes, SessionContext, SessionIssuer,
    UserIdentity, WebIdFederationData,
};
pub use lookup::{
    Event, LookupAttribute, LookupAttributeKey, LookupError, LookupEventsRequest,
    LookupEventsResponse, LookupQuery, PageCursor,
};
pub use record::{
    EventCategory, EventType, Record, RecordBuilder, Resource, TlsDetails, EVENT_VERSION,
};
pub use redact::{RedactedRecord, HIDDEN};
pub use signin::{ConsoleLogin, LoginOutcome};
pub use sink::delivery::{DeliveryConfig, DeliverySink};
pub use sink::jsonl::JsonlSink;
pub use sink::{FanoutSink, Sink, SinkLag};
