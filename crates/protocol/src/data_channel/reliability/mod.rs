//! Reliable, ordered, flow-controlled delivery over the data channel.
//!
//! Both ends of a data channel keep this state: the agent for its output
//! and the client for its input. The server in between keeps none, which is
//! why a server restart loses nothing: once the client reconnects, each end
//! resends what the other has not acknowledged and skips what it has
//! already delivered.
//!
//! * [`OutgoingBuffer`] numbers outgoing stream messages, keeps each one
//!   until it is acknowledged, says when to retransmit and counts the
//!   unacknowledged bytes for flow control.
//! * [`RttEstimator`] turns acknowledgement delays into a retransmission
//!   timeout, with the plugin's TCP-style smoothing.
//! * [`ReorderBuffer`] delivers incoming stream messages in sequence order,
//!   drops duplicates and holds a bounded number of early arrivals.
//!
//! Nothing here reads a clock: every call that needs the time takes an
//! [`std::time::Instant`].

mod incoming;
mod outgoing;
mod rtt;

pub use incoming::{Receive, ReorderBuffer, DEFAULT_REORDER_CAPACITY};
pub use outgoing::{AckOutcome, OutgoingBuffer, OutgoingConfig, OutgoingError};
pub use rtt::{
    RttEstimator, CLOCK_GRANULARITY, INITIAL_RTO, INITIAL_RTT, MAX_RTO, RTTVAR_GAIN, RTT_GAIN,
};
