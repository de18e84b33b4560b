//! The `Hello` exchange that opens every control connection.
//!
//! Each end sends a [`Hello`] as its first frame without waiting for the
//! other's, then computes the agreed version with [`negotiate`]. Both ends
//! compute the same answer from the same two hellos, so no third message is
//! needed. A failed negotiation is reported with an `error` message carrying
//! [`ErrorCode::UnsupportedVersion`](super::ErrorCode::UnsupportedVersion),
//! then the connection is closed.

use serde::{Deserialize, Serialize};

/// Names this protocol in [`Hello::protocol`], so a peer speaking something
/// else is recognised at once.
pub const PROTOCOL_NAME: &str = "seashell-agent";
/// The newest protocol version this crate speaks. Version 2 added
/// flow-controlled downloads (see
/// [`FILE_READ_ACK_VERSION`](super::messages::FILE_READ_ACK_VERSION));
/// version 3 added input typed by the server (see
/// [`SEND_INPUT_VERSION`](super::messages::SEND_INPUT_VERSION)); version 4
/// added binary data-channel frames (see
/// [`BINARY_FRAME_VERSION`](super::frame::BINARY_FRAME_VERSION)).
pub const PROTOCOL_VERSION: u32 = 4;
/// The oldest protocol version this crate speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Which end of the control channel a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The Seashell server.
    Server,
    /// The agent inside an environment.
    Agent,
}

/// The first message on a control connection, from either end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL_NAME`].
    pub protocol: String,
    /// Who is speaking.
    pub role: Role,
    /// Oldest protocol version supported.
    pub min_version: u32,
    /// Newest protocol version supported.
    pub max_version: u32,
    /// The sender's software version, for logs and status.
    pub software_version: String,
    /// The environment the agent serves, or the one the server expects to
    /// reach; lets either end detect a miswired socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
}

impl Hello {
    /// A hello for this crate's supported version range.
    pub fn new(role: Role, software_version: impl Into<String>) -> Self {
        Self {
            protocol: PROTOCOL_NAME.to_owned(),
            role,
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            software_version: software_version.into(),
            environment_id: None,
        }
    }

    /// The same hello naming an environment.
    pub fn with_environment(mut self, environment_id: impl Into<String>) -> Self {
        self.environment_id = Some(environment_id.into());
        self
    }
}

/// Why two hellos do not make a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer speaks another protocol.
    #[error("peer speaks {0:?}, not {PROTOCOL_NAME:?}")]
    WrongProtocol(String),
    /// Both ends claim the same role.
    #[error("both ends claim the {0:?} role")]
    SameRole(Role),
    /// A hello's version range is empty.
    #[error("empty version range {min}..={max}")]
    EmptyRange {
        /// Its minimum.
        min: u32,
        /// Its maximum.
        max: u32,
    },
    /// The two ranges do not overlap.
    #[error("no common version: ours {ours_min}..={ours_max}, theirs {theirs_min}..={theirs_max}")]
    NoCommonVersion {
        /// Our minimum.
        ours_min: u32,
        /// Our maximum.
        ours_max: u32,
        /// Their minimum.
        theirs_min: u32,
        /// Their maximum.
        theirs_max: u32,
    },
    /// The peer named another environment than expected.
    #[error("peer serves environment {theirs:?}, expected {ours:?}")]
    WrongEnvironment {
        /// The environment we expect.
        ours: String,
        /// The environment the peer named.
        theirs: String,
    },
    /// The first message was not a hello.
    #[error("first message was not a hello")]
    NotHello,
}

/// The version both ends will speak: the highest one in both ranges.
///
/// Environment ids are compared only when both hellos carry one.
pub fn negotiate(ours: &Hello, theirs: &Hello) -> Result<u32, HandshakeError> {
    if theirs.protocol != PROTOCOL_NAME {
        return Err(HandshakeError::WrongProtocol(theirs.protocol.clone()));
    }
    if ours.role == theirs.role {
        return Err(HandshakeError::SameRole(theirs.role));
    }
    for h in [ours, theirs] {
        if h.min_version > h.max_version {
            return Err(HandshakeError::EmptyRange {
                min: h.min_version,
                max: h.max_version,
            });
        }
    }
    if let (Some(a), Some(b)) = (&ours.environment_id, &theirs.environment_id) {
        if a != b {
            return Err(HandshakeError::WrongEnvironment {
                ours: a.clone(),
                theirs: b.clone(),
            });
        }
    }
    let low = ours.min_version.max(theirs.min_version);
    let high = ours.max_version.min(theirs.max_version);
    if low > high {
        return Err(HandshakeError::NoCommonVersion {
            ours_min: ours.min_version,
            ours_max: ours.max_version,
            theirs_min: theirs.min_version,
            theirs_max: theirs.max_version,
        });
    }
    Ok(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(role: Role, min: u32, max: u32) -> Hello {
        Hello {
            min_version: min,
            max_version: max,
            ..Hello::new(role, "0.1.0")
        }
    }

    #[test]
    fn picks_highest_common_version_symmetrically() {
        let s = hello(Role::Server, 1, 3);
        let a = hello(Role::Agent, 2, 5);
        assert_eq!(negotiate(&s, &a), Ok(3));
        assert_eq!(negotiate(&a, &s), Ok(3));
        assert_eq!(
            negotiate(
                &Hello::new(Role::Server, "x"),
                &Hello::new(Role::Agent, "y")
            ),
            Ok(PROTOCOL_VERSION)
        );
    }

    #[test]
    fn disjoint_ranges_fail() {
        let s = hello(Role::Server, 1, 1);
        let a = hello(Role::Agent, 2, 2);
        assert!(matches!(
            negotiate(&s, &a),
            Err(HandshakeError::NoCommonVersion { .. })
        ));
    }

    #[test]
    fn bad_hellos_fail() {
        let s = hello(Role::Server, 1, 1);
        let mut other = hello(Role::Agent, 1, 1);
        other.protocol = "http".into();
        assert_eq!(
            negotiate(&s, &other),
            Err(HandshakeError::WrongProtocol("http".into()))
        );
        assert_eq!(
            negotiate(&s, &hello(Role::Server, 1, 1)),
            Err(HandshakeError::SameRole(Role::Server))
        );
        assert_eq!(
            negotiate(&s, &hello(Role::Agent, 3, 2)),
            Err(HandshakeError::EmptyRange { min: 3, max: 2 })
        );
    }

    #[test]
    fn environment_mismatch_fails_only_when_both_name_one() {
        let s = Hello::new(Role::Server, "x").with_environment("env-a");
        let a = Hello::new(Role::Agent, "y").with_environment("env-b");
        assert!(matches!(
            negotiate(&s, &a),
            Err(HandshakeError::WrongEnvironment { .. })
        ));
        assert!(negotiate(&s, &Hello::new(Role::Agent, "y")).is_ok());
    }
}
