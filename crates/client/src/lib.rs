//! The client side of Seashell: signed calls of the CloudShell API
//! ([`api`]), the Session Manager data channel with resume
//! ([`data_channel`]), commands run in an environment ([`command`]) and file
//! transfers through pre-signed URLs ([`files`]), device login to IAM
//! Identity Center and its token cache ([`sso`]), over TLS with the
//! system's roots and the user's CA bundle ([`tls`]).

pub mod api;
pub mod command;
pub mod data_channel;
pub mod files;
pub mod sso;
pub mod tls;

pub use api::{ApiError, CloudShell};
