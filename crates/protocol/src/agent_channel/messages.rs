//! Control-channel messages.
//!
//! Requests carry a [`RequestId`] chosen by the server; the agent's answer
//! (`ok`, a specific reply, or `error`) carries the same id. Messages that
//! need no answer (relayed data-channel frames, file chunks, session-ended
//! reports) carry none.
//!
//! Unknown members are ignored when reading, so a later protocol version
//! can add optional members without a version bump; new message types or
//! changed meanings need a new version (see [`super::handshake`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use super::binary::Binary;
use super::handshake::Hello;
use crate::Secret;

/// Correlates a request with its answer. Chosen by the server, unique per
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// A shell session, as named by the CloudShell API's `SessionId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file transfer, chosen by the server, unique per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransferId(pub u64);

/// The most bytes of one download the agent sends beyond the server's
/// latest [`FileReadAck`](ServerMessage::FileReadAck), so what the server
/// holds for a slow consumer stays bounded per transfer while the shared
/// connection keeps flowing for everyone else.
pub const FILE_READ_WINDOW: u64 = 8 << 20;

/// The first protocol version with flow-controlled downloads
/// ([`FileReadAck`](ServerMessage::FileReadAck) and
/// [`FileReadAbort`](ServerMessage::FileReadAbort)). With an older peer the
/// server sends neither and the agent streams a file without waiting.
pub const FILE_READ_ACK_VERSION: u32 = 2;

/// The first protocol version with [`SendInput`](ServerMessage::SendInput).
/// The server never sends it to an older agent, which would not know it.
pub const SEND_INPUT_VERSION: u32 = 3;

/// The most bytes one [`SendInput`](ServerMessage::SendInput) may carry:
/// the agent's cap on a session's pending input, so one message can never
/// be refused for its size alone once the shell has read what came before.
pub const MAX_SEND_INPUT_LEN: usize = 1 << 20;

/// The shell program of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shell {
    /// bash, the default.
    #[default]
    Bash,
    /// zsh.
    Zsh,
    /// PowerShell, where the image has it.
    Pwsh,
}

/// How a client attaching to a session wants to continue.
///
/// The server knows which case it has: `resumeSession` (the same client
/// reconnecting, with its sequence numbers and screen intact) is
/// [`Resume`](Self::Resume); `createSession` with the `TabId` of a live
/// session (a reloaded browser tab, whose terminal starts empty) is
/// [`Fresh`](Self::Fresh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachMode {
    /// The client continues where it stopped: both ends keep their
    /// sequence numbers and the agent resends every unacknowledged frame,
    /// so nothing is lost or duplicated. The default, and what a message
    /// without `mode` means.
    #[default]
    Resume,
    /// The client starts over with an empty terminal: the agent drops the
    /// old data-channel state, performs the handshake again from sequence
    /// number 0 and sends a repaint of the current screen (contents,
    /// cursor, modes) before live output, instead of replaying raw bytes.
    Fresh,
}

/// Temporary AWS-style credentials for the environment's credentials
/// endpoint. Member names are those of the endpoint's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    /// The access key id (`ASIA…`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token.
    pub token: Secret,
    /// When they expire, ISO 8601 (e.g. `2026-11-24T13:00:00Z`).
    pub expiration: String,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// The shell exited.
    Exited,
    /// No input for the idle timeout.
    IdleTimeout,
    /// The session reached its maximum duration.
    MaxDuration,
    /// The server closed it.
    Closed,
    /// The environment is stopping.
    EnvironmentStopping,
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or not allowed in the current state.
    BadRequest,
    /// No common protocol version, or a message this version lacks.
    UnsupportedVersion,
    /// No session has that id.
    UnknownSession,
    /// A session with that id exists already.
    SessionExists,
    /// The concurrent session limit is reached.
    SessionLimit,
    /// No transfer has that id.
    UnknownTransfer,
    /// The path leaves the home directory.
    PathOutsideHome,
    /// The file does not exist.
    NotFound,
    /// The home volume is full.
    NoSpace,
    /// Another input/output error.
    Io,
    /// A bug or unexpected state on the answering side.
    Internal,
    /// A code this version does not know, from a newer peer.
    #[serde(other)]
    Unknown,
}

/// A session as listed in a status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: SessionId,
    /// Its shell.
    pub shell: Shell,
    /// Whether a client is attached.
    pub attached: bool,
    /// Milliseconds since the last keyboard input (or since the session
    /// started, if there was none), for the server's idle timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// Milliseconds since the session started, for the maximum session
    /// duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
}

/// The agent's answer to a status request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent's version.
    pub agent_version: String,
    /// Milliseconds since the agent started.
    pub uptime_ms: u64,
    /// Live sessions.
    pub sessions: Vec<SessionSummary>,
    /// Expiration of the credentials being served, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_expiration: Option<String>,
    /// Bytes used on the home volume, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_used_bytes: Option<u64>,
}

/// What the server sends to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Opens the connection; see [`super::handshake`].
    Hello(Hello),
    /// Starts a shell on a new PTY. Answered by `session_opened`.
    OpenSession {
        /// Request id.
        request_id: RequestId,
        /// The new session's id.
        session_id: SessionId,
        /// Which shell to run.
        #[serde(default)]
        shell: Shell,
        /// Initial terminal width.
        cols: u16,
        /// Initial terminal height.
        rows: u16,
        /// Extra environment variables for the shell (region, endpoints,
        /// credentials endpoint URI). Never credentials themselves.
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    /// A client connected, or reconnected, to the session's data channel.
    /// With [`AttachMode::Resume`] the agent resends every unacknowledged
    /// frame (starting the handshake if none completed yet); with
    /// [`AttachMode::Fresh`] it starts a new handshake and repaints the
    /// screen. Answered by `ok`.
    AttachSession {
        /// Request id.
        request_id: RequestId,
        /// The session.
        session_id: SessionId,
        /// Whether the client resumes or starts fresh; `resume` when
        /// absent.
        #[serde(default)]
        mode: AttachMode,
    },
    /// The client's data-channel socket closed; the agent keeps the shell
    /// and its output and stops retransmitting until the next attach.
    DetachSession {
        /// The session.
        session_id: SessionId,
    },
    /// Ends the session and its shell. Answered by `ok`.
    CloseSession {
        /// Request id.
        request_id: RequestId,
        /// The session.
        session_id: SessionId,
        /// Why the server ends it (e.g. its idle timeout or the maximum
        /// duration), reported back in `session_ended` and told to the
        /// client; [`SessionEndReason::Closed`] when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<SessionEndReason>,
    },
    /// One binary data-channel frame from the client, relayed unchanged.
    DataChannel {
        /// The session.
        session_id: SessionId,
        /// The encoded `ClientMessage`.
        frame: Binary,
    },
    /// Bytes typed into the session's shell on the server's behalf (e.g. a
    /// command approved through the CloudShell API), as if the user had
    /// typed them: they join the session's pending keyboard input, with the
    /// same priority and the same cap, and count as input activity for the
    /// idle timeout. Answered by `ok`, or `error` with `unknown_session`
    /// (no such session) or `bad_request` (more than
    /// [`MAX_SEND_INPUT_LEN`] bytes, or the input cap reached). From
    /// protocol version [`SEND_INPUT_VERSION`].
    SendInput {
        /// Request id.
        request_id: RequestId,
        /// The session.
        session_id: SessionId,
        /// The bytes, unchanged (e.g. `ls\r`).
        data: Binary,
    },
    /// Credentials to serve from now on, replacing any others. Answered by
    /// `ok`.
    PutCredentials {
        /// Request id.
        request_id: RequestId,
        /// The credentials.
        credentials: Credentials,
    },
    /// Stop serving credentials. Answered by `ok`.
    WithdrawCredentials {
        /// Request id.
        request_id: RequestId,
    },
    /// Starts writing a file in the home directory. Answered by `ok`.
    FileWriteBegin {
        /// Request id.
        request_id: RequestId,
        /// Names the transfer in the chunks that follow.
        transfer_id: TransferId,
        /// Path relative to the home directory; the agent refuses any path
        /// that resolves outside it.
        path: String,
        /// Expected size in bytes, if known, so a full volume fails early.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// A piece of the file, in order.
    FileWriteChunk {
        /// The transfer.
        transfer_id: TransferId,
        /// Byte offset of `data` in the file.
        offset: u64,
        /// The bytes.
        data: Binary,
    },
    /// Finishes the file: the agent flushes it and moves it into place.
    /// Answered by `ok`.
    FileWriteEnd {
        /// Request id.
        request_id: RequestId,
        /// The transfer.
        transfer_id: TransferId,
    },
    /// Abandons a write; the partial file is removed.
    FileWriteAbort {
        /// The transfer.
        transfer_id: TransferId,
    },
    /// Asks for a file from the home directory. Answered by
    /// `file_read_begin`, chunks and `file_read_end`, or by `error`. From
    /// version [`FILE_READ_ACK_VERSION`] the chunks are paced by
    /// [`FileReadAck`](Self::FileReadAck).
    FileRead {
        /// Request id.
        request_id: RequestId,
        /// Names the transfer in the chunks that come back.
        transfer_id: TransferId,
        /// Path relative to the home directory.
        path: String,
    },
    /// The server has consumed a download up to `offset` (exclusive): the
    /// agent may send more. Acknowledgements are cumulative; the agent keeps
    /// at most [`FILE_READ_WINDOW`] bytes sent beyond the latest one. From
    /// protocol version [`FILE_READ_ACK_VERSION`]; one for a transfer that
    /// has ended is ignored.
    FileReadAck {
        /// The transfer.
        transfer_id: TransferId,
        /// Bytes of the file consumed, counted from its start.
        offset: u64,
    },
    /// The server no longer wants the file (its client went away, or it
    /// gave up on the download): the agent stops sending and closes the
    /// file. From protocol version [`FILE_READ_ACK_VERSION`]; one for a
    /// transfer that has ended is ignored.
    FileReadAbort {
        /// The transfer.
        transfer_id: TransferId,
    },
    /// Asks for health and status. Answered by `status`.
    Status {
        /// Request id.
        request_id: RequestId,
    },
    /// A failure on the server's side, e.g. a failed handshake.
    Error {
        /// The request this answers, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        /// What kind of failure.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

/// What the agent sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Opens the connection; see [`super::handshake`].
    Hello(Hello),
    /// The request succeeded and has nothing more to say.
    Ok {
        /// The request.
        request_id: RequestId,
    },
    /// The session's shell is running.
    SessionOpened {
        /// The request.
        request_id: RequestId,
        /// The session.
        session_id: SessionId,
    },
    /// A session ended on the agent's side.
    SessionEnded {
        /// The session.
        session_id: SessionId,
        /// Why.
        reason: SessionEndReason,
        /// The shell's exit status, when it exited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// One binary data-channel frame for the client, relayed unchanged.
    DataChannel {
        /// The session.
        session_id: SessionId,
        /// The encoded `ClientMessage`.
        frame: Binary,
    },
    /// A requested file exists and is about to be sent.
    FileReadBegin {
        /// The request.
        request_id: RequestId,
        /// The transfer.
        transfer_id: TransferId,
        /// Its size in bytes.
        size: u64,
    },
    /// A piece of the requested file, in order.
    FileReadChunk {
        /// The transfer.
        transfer_id: TransferId,
        /// Byte offset of `data` in the file.
        offset: u64,
        /// The bytes.
        data: Binary,
    },
    /// The whole file has been sent.
    FileReadEnd {
        /// The transfer.
        transfer_id: TransferId,
    },
    /// Answer to a status request.
    Status {
        /// The request.
        request_id: RequestId,
        /// The status.
        status: AgentStatus,
    },
    /// A request failed, or something failed outside any request.
    Error {
        /// The request this answers, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        /// What kind of failure.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

impl AgentMessage {
    /// The request this message answers, if it answers one.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            AgentMessage::Ok { request_id }
            | AgentMessage::SessionOpened { request_id, .. }
            | AgentMessage::FileReadBegin { request_id, .. }
            | AgentMessage::Status { request_id, .. } => Some(*request_id),
            AgentMessage::Error { request_id, .. } => *request_id,
            AgentMessage::Hello(_)
            | AgentMessage::SessionEnded { .. }
            | AgentMessage::DataChannel { .. }
            | AgentMessage::FileReadChunk { .. }
            | AgentMessage::FileReadEnd { .. } => None,
        }
    }
}

impl ServerMessage {
    /// The request id, if this message expects an answer.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ServerMessage::OpenSession { request_id, .. }
            | ServerMessage::AttachSession { request_id, .. }
            | ServerMessage::CloseSession { request_id, .. }
            | ServerMessage::SendInput { request_id, .. }
            | ServerMessage::PutCredentials { request_id, .. }
            | ServerMessage::WithdrawCredentials { request_id }
            | ServerMessage::FileWriteBegin { request_id, .. }
            | ServerMessage::FileWriteEnd { request_id, .. }
            | ServerMessage::FileRead { request_id, .. }
            | ServerMessage::Status { request_id } => Some(*request_id),
            ServerMessage::Error { request_id, .. } => *request_id,
            ServerMessage::Hello(_)
            | ServerMessage::DetachSession { .. }
            | ServerMessage::DataChannel { .. }
            | ServerMessage::FileWriteChunk { .. }
            | ServerMessage::FileWriteAbort { .. }
            | ServerMessage::FileReadAck { .. }
            | ServerMessage::FileReadAbort { .. } => None,
        }
    }
}
