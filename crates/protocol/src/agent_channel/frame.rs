//! Length-prefixed JSON frames.
//!
//! A frame is a big-endian `u32` byte count followed by that many bytes of
//! UTF-8 JSON (one message). The prefix lets a reader find message
//! boundaries without parsing JSON, and the JSON keeps a captured stream
//! readable with ordinary tools.

use serde::{de::DeserializeOwned, Serialize};

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
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let Some(body) = self.next_body()? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(&body)?))
    }

    /// The next whole frame body, `Ok(None)` if more bytes are needed.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(prefix) = self.buffer.first_chunk::<LENGTH_PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
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
