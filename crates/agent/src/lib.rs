//! The Seashell agent: the init process of every environment.
//!
//! It listens on a Unix socket for the Seashell server ([`control`]),
//! runs shells on pseudo-terminals and keeps each one's data-channel state
//! and screen so clients can resume or repaint ([`session`]), serves the
//! environment's temporary credentials on a loopback port
//! ([`credentials`]), transfers files confined to the home directory
//! ([`files`]), and does what PID 1 must: reap orphans and stop cleanly on
//! `SIGTERM` ([`init`]).
//!
//! The binary (`src/main.rs`) wires these together; `docs/agent.md`
//! describes the agent as operators see it.

#![warn(missing_docs)]

pub mod agent;
pub mod control;
pub mod credentials;
pub mod files;
pub mod init;
pub mod session;

pub use agent::{Agent, AgentConfig};
