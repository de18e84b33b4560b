//! Length-prefixed frames.
//!
//! A frame is a big-endian `u32` byte count followed by that many bytes of
//! UTF-8 JSON (one message). The prefix lets a reader find message
//! boundaries without parsing JSON, and the JSON keeps a captured stream
//! readable with ordinary tools.
//!
//! From protocol version [`BINARY_FRAME_VERSION`] on, a data-channel frame
//! (the bulk of the traffic while a terminal floods) may instead travel in
//! binary: the prefix has its top bit set, and the body is the session id's
//! length (one byte), the session id, then the data-channel frame as it is.
//! That spares base64 and JSON escaping on both ends. A decoder accepts
//! both forms whatever was negotiated; an encoder uses binary only when
//! told the peer speaks it.

use serde::{de::DeserializeOwned, Serialize};

use super::messages::{AgentMessage, ServerMessage, SessionId};
use super::Binary;

/// The first protocol version whose peers read binary data-channel frames.
pub const BINARY_FRAME_VERSION: u32 = 4;
/// Marks a binary frame in the length prefix.
const BINARY_FLAG: u32 = 1 << 31;

/// Bytes in the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Default largest frame body: room for a 1 MiB data-channel frame or
/// file chunk after base64, with margin.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// Why a frame could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame body exceeds the maximum. On reading, the stream cannot be
    /// resynchronised and the connection must be closed.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The frame body length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The frame body is not a valid message. The frame has been consumed,
    /// so the stream stays in step and later frames can still be read.
    #[error("frame is not a valid message: {0}")]
    Json(#[from] serde_json::Error),
    /// A binary frame's body is malformed. Like [`FrameError::Json`], the
    /// frame has been consumed.
    #[error("binary frame is malformed: {0}")]
    Binary(&'static str),
}

/// A message type with a data-channel variant, which may travel as a
/// binary frame.
pub trait DataChannelMessage: Sized {
    /// The session and frame, if this is a data-channel message.
    fn as_data_channel(&self) -> Option<(&SessionId, &[u8])>;
    /// The data-channel message for a binary frame.
    fn from_data_channel(session_id: SessionId, frame: Vec<u8>) -> Self;
}

impl DataChannelMessage for AgentMessage {
    fn as_data_channel(&self) -> Option<(&SessionId, &[u8])> {
        match self {
            AgentMessage::DataChannel { session_id, frame } => Some((session_id, frame.as_slice())),
            _ => None,
        }
    }

    fn from_data_channel(session_id: SessionId, frame: Vec<u8>) -> Self {
        AgentMessage::DataChannel {
            session_id,
            frame: Binary(frame),
        }
    }
}

impl DataChannelMessage for ServerMessage {
    fn as_data_channel(&self) -> Option<(&SessionId, &[u8])> {
        match self {
            ServerMessage::DataChannel { session_id, frame } => {
                Some((session_id, frame.as_slice()))
            }
            _ => None,
        }
    }

    fn from_data_channel(session_id: SessionId, frame: Vec<u8>) -> Self {
        ServerMessage::DataChannel {
            session_id,
            frame: Binary(frame),
        }
    }
}

/// Encodes one message for a peer that agreed on protocol `version`:
/// binary for a data-channel frame when the version has it, JSON otherwise.
pub fn encode_message<T: Serialize + DataChannelMessage>(
    message: &T,
    version: u32,
    max_frame_len: usize,
) -> Result<Vec<u8>, FrameError> {
    match message.as_data_channel() {
        Some((session_id, frame)) if version >= BINARY_FRAME_VERSION => {
            encode_binary(session_id, frame, max_frame_len)
        }
        _ => encode_frame(message, max_frame_len),
    }
}

fn encode_binary(
    session_id: &SessionId,
    frame: &[u8],
    max_frame_len: usize,
) -> Result<Vec<u8>, FrameError> {
    let id = session_id.0.as_bytes();
    let id_len = u8::try_from(id.len()).map_err(|_| FrameError::Binary("session id too long"))?;
    let len = 1 + id.len() + frame.len();
    let prefix = u32::try_from(len)
        .ok()
        .filter(|&l| len <= max_frame_len && l & BINARY_FLAG == 0)
        .ok_or(FrameError::TooLarge {
            len,
            max: max_frame_len,
        })?;
    let mut out = Vec::with_capacity(LENGTH_PREFIX_LEN + len);
    out.extend_from_slice(&(prefix | BINARY_FLAG).to_be_bytes());
    out.push(id_len);
    out.extend_from_slice(id);
    out.extend_from_slice(frame);
    Ok(out)
}

fn decode_binary<T: DataChannelMessage>(body: &[u8]) -> Result<T, FrameError> {
    let (&id_len, rest) = body.split_first().ok_or(FrameError::Binary("empty body"))?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len {
        return Err(FrameError::Binary("session id cut short"));
    }
    let (id, frame) = rest.split_at(id_len);
    let id = std::str::from_utf8(id).map_err(|_| FrameError::Binary("session id is not UTF-8"))?;
    Ok(T::from_data_channel(
        SessionId(id.to_owned()),
        frame.to_vec(),
    ))
}

/// Encodes one message as a frame.
pub fn encode_frame<T: Serialize>(
    message: &T,
    max_frame_len: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; LENGTH_PREFIX_LEN];
    serde_json::to_writer(&mut out, message)?;
    let len = out.len() - LENGTH_PREFIX_LEN;
    let prefix = u32::try_from(len)
        .ok()
        .filter(|_| len <= max_frame_len)
        .ok_or(FrameError::TooLarge {
            len,
            max: max_frame_len,
        })?;
    out[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

/// Splits a byte stream into messages.
///
/// Feed it whatever the socket delivered with [`push`](Self::push), then
/// call [`next_message`](Self::next_message) until it returns `Ok(None)`.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame_len`.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max_frame_len,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message<T: DeserializeOwned + DataChannelMessage>(
        &mut self,
    ) -> Result<Option<T>, FrameError> {
        let binary = self
            .buffer
            .first_chunk::<LENGTH_PREFIX_LEN>()
            .is_some_and(|p| u32::from_be_bytes(*p) & BINARY_FLAG != 0);
        let Some(body) = self.next_body()? else {
            return Ok(None);
        };
        if binary {
            return decode_binary(&body).map(Some);
        }
        Ok(Some(serde_json::from_slice(&body)?))
    }

    /// The next whole frame body (JSON, or a binary frame's body), `Ok(None)`
    /// if more bytes are needed.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(prefix) = self.buffer.first_chunk::<LENGTH_PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix) & !BINARY_FLAG).unwrap_or(usize::MAX);
        // Checked before waiting for the body, so a hostile prefix cannot
        // make the buffer grow without bound.
        if len > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let end = LENGTH_PREFIX_LEN + len;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let body = self.buffer[LENGTH_PREFIX_LEN..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some(body))
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}
