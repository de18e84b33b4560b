//! Answers to the server's requests.
//!
//! Session requests go to the session's task; credentials go to the
//! store; file transfers are kept per connection, so a lost connection
//! abandons its uploads (and their temporary files) and stops its
//! downloads.
//!
//! Downloads are flow-controlled from protocol version
//! [`FILE_READ_ACK_VERSION`]: each runs on a task of its own that keeps at
//! most [`FILE_READ_WINDOW`] bytes sent beyond the server's latest
//! `file_read_ack`. The server must keep reading the shared connection for
//! every other session, so without this a file read faster than its
//! client takes it would pile up in the server.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use seashell_protocol::agent_channel::{
    AgentMessage, Binary, ErrorCode, RequestId, ServerMessage, SessionEndReason, SessionId,
    TransferId, FILE_READ_ACK_VERSION, FILE_READ_WINDOW, MAX_SEND_INPUT_LEN, SEND_INPUT_VERSION,
};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::agent::{Agent, OpenError};
use crate::files::PendingWrite;
use crate::session::pty::PtyError;

/// Bytes of a file sent per chunk: well under the frame limit once base64
/// has grown it by a third.
pub const FILE_CHUNK: usize = 512 * 1024;

/// Per-connection state: uploads in progress, those that failed before
/// their end (so `file_write_end` can say why), and downloads in progress.
pub(super) struct Connection {
    /// This connection's queue to its writer. Weak, so a download still
    /// running does not keep the writer open when the agent stops.
    outbox: mpsc::WeakSender<AgentMessage>,
    version: u32,
    writes: HashMap<TransferId, PendingWrite>,
    failed: HashMap<TransferId, (ErrorCode, String)>,
    /// Each download's acknowledged offset. Dropping the sender (on
    /// `file_read_abort`, or with the connection) stops the download.
    reads: HashMap<TransferId, watch::Sender<u64>>,
}

impl Connection {
    /// State for a connection that agreed on protocol `version` and whose
    /// writer takes messages from `outbox`.
    pub(super) fn new(outbox: &mpsc::Sender<AgentMessage>, version: u32) -> Self {
        Self {
            outbox: outbox.downgrade(),
            version,
            writes: HashMap::new(),
            failed: HashMap::new(),
            reads: HashMap::new(),
        }
    }
}

fn error_reply(request_id: RequestId, code: ErrorCode, message: impl Into<String>) -> AgentMessage {
    AgentMessage::Error {
        request_id: Some(request_id),
        code,
        message: message.into(),
    }
}

fn unknown_session(request_id: Option<RequestId>, id: &SessionId) -> AgentMessage {
    AgentMessage::Error {
        request_id,
        code: ErrorCode::UnknownSession,
        message: format!("no session {id}"),
    }
}

fn unknown_transfer(request_id: Option<RequestId>, id: TransferId) -> AgentMessage {
    AgentMessage::Error {
        request_id,
        code: ErrorCode::UnknownTransfer,
        message: format!("no transfer {}", id.0),
    }
}

/// Runs blocking filesystem work without stalling the other tasks on this
/// worker thread.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

pub(super) async fn handle(
    agent: &Arc<Agent>,
    connection: &mut Connection,
    message: ServerMessage,
) {
    let request_id = message.request_id();
    let span = tracing::debug_span!("request", request_id = request_id.map(|r| r.0));
    let reply = handle_inner(agent, connection, message)
        .instrument(span)
        .await;
    if let Some(reply) = reply {
        agent.send(reply).await;
    }
}

async fn handle_inner(
    agent: &Arc<Agent>,
    connection: &mut Connection,
    message: ServerMessage,
) -> Option<AgentMessage> {
    match message {
        ServerMessage::Hello(_) => Some(AgentMessage::Error {
            request_id: None,
            code: ErrorCode::BadRequest,
            message: "hello was already exchanged".into(),
        }),
        ServerMessage::OpenSession {
            request_id,
            session_id,
            shell,
            cols,
            rows,
            env,
        } => Some(
            match agent.open_session(session_id.clone(), shell, cols, rows, env) {
                Ok(()) => AgentMessage::SessionOpened {
                    request_id,
                    session_id,
                },
                Err(e) => {
                    let code = match &e {
                        OpenError::Exists(_) => ErrorCode::SessionExists,
                        OpenError::Limit(_) => ErrorCode::SessionLimit,
                        OpenError::Pty(PtyError::ShellNotFound(_)) => ErrorCode::BadRequest,
                        OpenError::Pty(_) => ErrorCode::Internal,
                    };
                    tracing::warn!(%session_id, error = %e, "session not opened");
                    error_reply(request_id, code, e.to_string())
                }
            },
        ),
        ServerMessage::AttachSession {
            request_id,
            session_id,
            mode,
        } => Some(match agent.session(&session_id) {
            Some(session) if session.attach(mode).await => AgentMessage::Ok { request_id },
            // Gone, or ending as the client came back.
            _ => unknown_session(Some(request_id), &session_id),
        }),
        ServerMessage::DetachSession { session_id } => {
            if let Some(session) = agent.session(&session_id) {
                session.detach();
            }
            None
        }
        ServerMessage::CloseSession {
            request_id,
            session_id,
            reason,
        } => match agent.session(&session_id) {
            Some(session) => {
                // Closing waits for the shell to go; meanwhile this
                // connection keeps serving the other sessions.
                let agent = agent.clone();
                tokio::spawn(
                    async move {
                        session
                            .close(reason.unwrap_or(SessionEndReason::Closed))
                            .await;
                        agent.send(AgentMessage::Ok { request_id }).await;
                    }
                    .in_current_span(),
                );
                None
            }
            None => Some(unknown_session(Some(request_id), &session_id)),
        },
        ServerMessage::DataChannel { session_id, frame } => match agent.session(&session_id) {
            Some(session) => {
                session.frame(frame.into_inner());
                None
            }
            None => Some(unknown_session(None, &session_id)),
        },
        ServerMessage::SendInput {
            request_id,
            session_id,
            data,
        } => Some(
            send_input(
                agent,
                connection,
                request_id,
                &session_id,
                data.into_inner(),
            )
            .await,
        ),
        ServerMessage::PutCredentials {
            request_id,
            credentials,
        } => {
            tracing::info!(
                access_key_id = %credentials.access_key_id,
                expiration = %credentials.expiration,
                "credentials pushed"
            );
            agent.credentials().put(credentials);
            Some(AgentMessage::Ok { request_id })
        }
        ServerMessage::WithdrawCredentials { request_id } => {
            tracing::info!("credentials withdrawn");
            agent.credentials().withdraw();
            Some(AgentMessage::Ok { request_id })
        }
        ServerMessage::FileWriteBegin {
            request_id,
            transfer_id,
            path,
            size,
        } => Some(file_write_begin(
            agent,
            connection,
            request_id,
            transfer_id,
            &path,
            size,
        )),
        ServerMessage::FileWriteChunk {
            transfer_id,
            offset,
            data,
        } => {
            let Some(write) = connection.writes.get_mut(&transfer_id) else {
                // After a failure the server may still be sending the rest
                // of the file; those chunks are dropped quietly.
                if connection.failed.contains_key(&transfer_id) {
                    return None;
                }
                return Some(unknown_transfer(None, transfer_id));
            };
            let result = blocking(|| write.write_chunk(offset, data.as_slice()));
            match result {
                Ok(()) => None,
                Err(e) => {
                    // The partial file goes now; the server learns at once
                    // and again in the answer to file_write_end.
                    connection.writes.remove(&transfer_id);
                    tracing::warn!(transfer_id = transfer_id.0, error = %e, "upload failed");
                    connection
                        .failed
                        .insert(transfer_id, (e.code(), e.to_string()));
                    Some(AgentMessage::Error {
                        request_id: None,
                        code: e.code(),
                        message: format!("transfer {}: {e}", transfer_id.0),
                    })
                }
            }
        }
        ServerMessage::FileWriteEnd {
            request_id,
            transfer_id,
        } => Some(match connection.writes.remove(&transfer_id) {
            Some(write) => {
                let written = write.written();
                match blocking(|| write.finish()) {
                    Ok(()) => {
                        tracing::info!(transfer_id = transfer_id.0, written, "file written");
                        AgentMessage::Ok { request_id }
                    }
                    Err(e) => error_reply(request_id, e.code(), e.to_string()),
                }
            }
            None => match connection.failed.remove(&transfer_id) {
                Some((code, message)) => error_reply(request_id, code, message),
                None => unknown_transfer(Some(request_id), transfer_id),
            },
        }),
        ServerMessage::FileWriteAbort { transfer_id } => {
            connection.failed.remove(&transfer_id);
            if let Some(write) = connection.writes.remove(&transfer_id) {
                blocking(|| drop(write));
                tracing::info!(transfer_id = transfer_id.0, "upload abandoned");
            }
            None
        }
        ServerMessage::FileRead {
            request_id,
            transfer_id,
            path,
        } => file_read(agent, connection, request_id, transfer_id, &path),
        ServerMessage::FileReadAck {
            transfer_id,
            offset,
        } => {
            // Acknowledgements may arrive after the download ended (the
            // server acknowledges as its client consumes); they are moot.
            if let Some(acked) = connection.reads.get(&transfer_id) {
                if acked.is_closed() {
                    connection.reads.remove(&transfer_id);
                } else {
                    // Cumulative: a stale one never moves the mark back.
                    acked.send_if_modified(|mark| {
                        let newer = offset > *mark;
                        if newer {
                            *mark = offset;
                        }
                        newer
                    });
                }
            }
            None
        }
        ServerMessage::FileReadAbort { transfer_id } => {
            // Dropping the sender stops the task, which closes the file.
            if let Some(acked) = connection.reads.remove(&transfer_id) {
                if !acked.is_closed() {
                    tracing::info!(transfer_id = transfer_id.0, "download abandoned");
                }
            }
            None
        }
        ServerMessage::Status { request_id } => Some(AgentMessage::Status {
            request_id,
            status: blocking(|| agent.status()),
        }),
        ServerMessage::Error {
            request_id,
            code,
            message,
        } => {
            tracing::warn!(?request_id, ?code, %message, "the server reported an error");
            None
        }
    }
}

/// Types server-sent bytes into a session, refused on a connection that
/// agreed on a version without `send_input` (the server should not have
/// sent it) and beyond the pending-input cap.
async fn send_input(
    agent: &Arc<Agent>,
    connection: &Connection,
    request_id: RequestId,
    session_id: &SessionId,
    data: Vec<u8>,
) -> AgentMessage {
    if connection.version < SEND_INPUT_VERSION {
        return error_reply(
            request_id,
            ErrorCode::UnsupportedVersion,
            format!(
                "send_input needs protocol version {SEND_INPUT_VERSION}; this connection agreed on {}",
                connection.version
            ),
        );
    }
    if data.len() > MAX_SEND_INPUT_LEN {
        return error_reply(
            request_id,
            ErrorCode::BadRequest,
            format!("input of {} bytes exceeds {MAX_SEND_INPUT_LEN}", data.len()),
        );
    }
    let Some(session) = agent.session(session_id) else {
        return unknown_session(Some(request_id), session_id);
    };
    let len = data.len();
    match session.input(data).await {
        Some(true) => {
            tracing::info!(%session_id, bytes = len, "input sent by the server");
            AgentMessage::Ok { request_id }
        }
        Some(false) => error_reply(
            request_id,
            ErrorCode::BadRequest,
            "the shell is not reading its input; the pending input is full",
        ),
        None => unknown_session(Some(request_id), session_id),
    }
}

fn file_write_begin(
    agent: &Agent,
    connection: &mut Connection,
    request_id: RequestId,
    transfer_id: TransferId,
    path: &str,
    size: Option<u64>,
) -> AgentMessage {
    let Some(home) = agent.home() else {
        return error_reply(
            request_id,
            ErrorCode::Io,
            "the home directory is unavailable",
        );
    };
    if connection.writes.contains_key(&transfer_id) {
        return error_reply(request_id, ErrorCode::BadRequest, "transfer id in use");
    }
    match blocking(|| home.begin_write(path, size)) {
        Ok(write) => {
            tracing::info!(transfer_id = transfer_id.0, ?size, "upload started");
            connection.writes.insert(transfer_id, write);
            AgentMessage::Ok { request_id }
        }
        Err(e) => {
            tracing::info!(transfer_id = transfer_id.0, error = %e, "upload refused");
            error_reply(request_id, e.code(), e.to_string())
        }
    }
}

fn file_read(
    agent: &Arc<Agent>,
    connection: &mut Connection,
    request_id: RequestId,
    transfer_id: TransferId,
    path: &str,
) -> Option<AgentMessage> {
    let Some(home) = agent.home() else {
        return Some(error_reply(
            request_id,
            ErrorCode::Io,
            "the home directory is unavailable",
        ));
    };
    // Finished downloads leave their entry until now (or until an
    // acknowledgement for them arrives).
    connection.reads.retain(|_, acked| !acked.is_closed());
    if connection.reads.contains_key(&transfer_id) {
        return Some(error_reply(
            request_id,
            ErrorCode::BadRequest,
            "transfer id in use",
        ));
    }
    let (file, size) = match blocking(|| home.open_read(path)) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::info!(transfer_id = transfer_id.0, error = %e, "download refused");
            return Some(error_reply(request_id, e.code(), e.to_string()));
        }
    };
    let (acked_tx, acked) = watch::channel(0u64);
    connection.reads.insert(transfer_id, acked_tx);
    let window = (connection.version >= FILE_READ_ACK_VERSION).then_some(FILE_READ_WINDOW);
    let mut download = Download {
        outbox: connection.outbox.clone(),
        transfer_id,
        acked,
        window,
    };
    // Streamed from its own task so a large file does not hold up the
    // connection.
    tokio::spawn(
        async move {
            let file = tokio::fs::File::from_std(file);
            let result = download.run(request_id, size, file).await;
            match result {
                Ok(sent) => tracing::info!(transfer_id = transfer_id.0, bytes = sent, "file sent"),
                Err(Stopped::Abandoned(sent)) => tracing::info!(
                    transfer_id = transfer_id.0,
                    bytes = sent,
                    "download stopped: abandoned by the server or its connection"
                ),
                Err(Stopped::Io(e)) => {
                    tracing::warn!(transfer_id = transfer_id.0, error = %e, "download failed");
                    download
                        .send(AgentMessage::Error {
                            request_id: None,
                            code: ErrorCode::Io,
                            message: format!("transfer {}: {e}", transfer_id.0),
                        })
                        .await;
                }
            }
        }
        .in_current_span(),
    );
    None
}

/// One download in progress, on its connection.
struct Download {
    outbox: mpsc::WeakSender<AgentMessage>,
    transfer_id: TransferId,
    /// The server's acknowledged offset; closed when the server aborts the
    /// download or the connection ends.
    acked: watch::Receiver<u64>,
    /// Bytes that may be sent beyond `acked`; `None` for a peer that does
    /// not acknowledge (protocol version 1).
    window: Option<u64>,
}

/// Why a download stopped before its end.
enum Stopped {
    /// The server aborted it, or the connection is gone; carries the bytes
    /// sent.
    Abandoned(u64),
    /// Reading the file failed.
    Io(io::Error),
}

impl Download {
    /// Sends through this download's own connection; whether it took it.
    async fn send(&self, message: AgentMessage) -> bool {
        match self.outbox.upgrade() {
            Some(outbox) => outbox.send(message).await.is_ok(),
            None => false,
        }
    }

    /// Sends `file_read_begin`, the chunks and `file_read_end`; the bytes
    /// sent.
    async fn run(
        &mut self,
        request_id: RequestId,
        size: u64,
        mut file: tokio::fs::File,
    ) -> Result<u64, Stopped> {
        let transfer_id = self.transfer_id;
        let begin = AgentMessage::FileReadBegin {
            request_id,
            transfer_id,
            size,
        };
        if !self.send(begin).await {
            return Err(Stopped::Abandoned(0));
        }
        let mut offset = 0u64;
        loop {
            self.wait_for_room(offset).await?;
            let mut chunk = vec![0u8; FILE_CHUNK];
            let n = read_full(&mut file, &mut chunk)
                .await
                .map_err(Stopped::Io)?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            let message = AgentMessage::FileReadChunk {
                transfer_id,
                offset,
                data: Binary(chunk),
            };
            if !self.send(message).await {
                return Err(Stopped::Abandoned(offset));
            }
            offset += u64::try_from(n).unwrap_or(u64::MAX);
        }
        if !self.send(AgentMessage::FileReadEnd { transfer_id }).await {
            return Err(Stopped::Abandoned(offset));
        }
        Ok(offset)
    }

    /// Waits until another chunk after `offset` fits in the window, or
    /// fails if the download was abandoned meanwhile.
    async fn wait_for_room(&mut self, offset: u64) -> Result<(), Stopped> {
        if self.acked.has_changed().is_err() {
            return Err(Stopped::Abandoned(offset));
        }
        let Some(window) = self.window else {
            return Ok(());
        };
        let chunk = FILE_CHUNK as u64;
        loop {
            let acked = *self.acked.borrow_and_update();
            if offset.saturating_sub(acked).saturating_add(chunk) <= window {
                return Ok(());
            }
            if self.acked.changed().await.is_err() {
                return Err(Stopped::Abandoned(offset));
            }
        }
    }
}

/// Fills `buf` as far as the file allows; short only at the end.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
