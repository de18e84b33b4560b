//! Seashell's wire formats, with no I/O of their own.
//!
//! Two protocols live here:
//!
//! * [`data_channel`]: the AWS Systems Manager Session Manager data channel,
//!   spoken on the WebSocket between a client (the console, `seashell
//!   connect`, or the unmodified `session-manager-plugin`) and the agent that
//!   owns the shell. It holds the binary [`ClientMessage`] frame, the JSON
//!   payloads carried inside it, and the reliability machinery (outgoing
//!   buffer with retransmission, round-trip estimation, reorder buffer, flow
//!   control window) that both ends share. The server only relays these
//!   frames, so a server restart loses nothing.
//! * [`agent_channel`]: the versioned control channel between the Seashell
//!   server and the agent inside each environment: length-prefixed JSON
//!   frames, a `Hello` handshake, and the requests and answers for sessions,
//!   relayed data-channel frames, credentials, file transfer and status.
//!
//! Everything is pure: callers own sockets, timers and clocks, and pass the
//! current [`std::time::Instant`] in where time matters, so every behaviour
//! is testable without sleeping.
//!
//! [`ClientMessage`]: data_channel::ClientMessage

// Tests may unwrap: a panic there is a failed test, not a crash on peer data.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agent_channel;
pub mod data_channel;
mod secret;

pub use secret::Secret;
