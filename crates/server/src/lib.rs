//! The Seashell server: HTTP, the service APIs, authentication, state and
//! audit (DESIGN §1–§3, §7, §8).
//!
//! [`server::start`] opens the state, bootstraps the first account and
//! listens; [`server::Running::run_until`] serves until a shutdown signal.

#![warn(missing_docs)]

pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod builtin;
pub mod caller;
pub mod config;
pub mod console;
pub mod envs;
pub mod error;
pub mod external_idp;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod indexer;
pub mod limits;
pub mod metrics;
pub mod metrics_access;
pub mod mfa;
pub mod password;
pub mod password_policy;
pub mod portal;
pub mod protocol;
pub mod server;
pub mod services;
pub mod signin;
pub mod state;
pub mod store;

pub use config::{Config, LogFormat, Overrides};
pub use server::{start, Running, ServeError};
