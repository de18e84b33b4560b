//! The control channel: the agent listens, the Seashell server connects.
//!
//! One server connection is served at a time. A new connection that
//! completes the hello exchange replaces the current one, because the
//! server may restart (or lose its socket) and reconnect, and the agent
//! must not wait for a dead peer to time out.
//! Sessions belong to the agent, not to the connection, so they survive
//! the switch; in-flight file transfers belong to the connection and are
//! abandoned with it.
//!
//! Nothing here depends on the transport: [`serve`] takes any
//! [`Listener`], so TCP with mutual TLS can replace the Unix socket by
//! implementing that trait for a TLS acceptor.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use seashell_protocol::agent_channel::{
    encode_message, negotiate, AgentMessage, ErrorCode, FrameDecoder, FrameError, Hello, Role,
    ServerMessage, DEFAULT_MAX_FRAME_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

mod requests;

pub use requests::FILE_CHUNK;

use crate::agent::{Agent, OUTBOX_CAPACITY};

/// How long the server has to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A source of server connections.
pub trait Listener: Send + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    async fn accept(&mut self) -> io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Binds the control socket at `path`, replacing a stale socket file left
/// by an earlier run, and makes it accessible to its owner (root) only, so
/// the shells' user cannot impersonate the server.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Normally the runtime's bind mount; created when run by hand.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Why a control connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket failed.
    #[error("control connection: {0}")]
    Io(#[from] io::Error),
    /// A frame could not be encoded or the stream is out of step.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The hello exchange failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
}

/// Aborts a task when dropped, so a finished connection takes its writer
/// with it.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves connections from `listener` forever.
///
/// Each connection runs on its own task. One that completes the hello
/// exchange replaces the current one, which is then closed; one that never
/// does is dropped after a timeout without disturbing the current one.
pub async fn serve<L: Listener>(mut listener: L, agent: Arc<Agent>) {
    let mut number: u64 = 0;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a control connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        number += 1;
        let agent = agent.clone();
        let span = tracing::info_span!("control", connection = number);
        tokio::spawn(
            async move {
                match run_connection(stream, agent).await {
                    Ok(()) | Err(ControlError::Closed) => tracing::info!("connection closed"),
                    Err(e) => tracing::warn!(error = %e, "control connection ended"),
                }
            }
            .instrument(span),
        );
    }
}

/// Writes one message for a server that agreed on `version` (0 before the
/// hellos are exchanged, which means JSON only).
async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &AgentMessage,
    version: u32,
) -> Result<(), ControlError> {
    let frame = encode_message(message, version, DEFAULT_MAX_FRAME_LEN)?;
    writer.write_all(&frame).await?;
    Ok(())
}

async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Result<ServerMessage, serde_json::Error>, ControlError> {
    loop {
        match decoder.next_message::<ServerMessage>() {
            Ok(Some(message)) => return Ok(Ok(message)),
            Ok(None) => {}
            Err(FrameError::Json(e)) => return Ok(Err(e)),
            Err(e) => return Err(e.into()),
        }
        let n = reader.read(buf).await?;
        if n == 0 {
            return Err(ControlError::Closed);
        }
        decoder.push(&buf[..n]);
    }
}

/// Cleans up after a connection however it ends, even when its task is
/// aborted because a newer connection replaced it.
struct ConnectionGuard {
    agent: Arc<Agent>,
    generation: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.agent.disconnect(self.generation);
    }
}

async fn run_connection<S>(stream: S, agent: Arc<Agent>) -> Result<(), ControlError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];

    // Both ends send hello first without waiting; see the protocol docs.
    let mut ours = Hello::new(Role::Agent, env!("CARGO_PKG_VERSION"));
    if let Some(id) = &agent.config().environment_id {
        ours = ours.with_environment(id.clone());
    }
    write_message(&mut writer, &AgentMessage::Hello(ours.clone()), 0).await?;
    let first = tokio::time::timeout(
        HELLO_TIMEOUT,
        read_message(&mut reader, &mut decoder, &mut buf),
    )
    .await
    .map_err(|_| ControlError::Handshake("no hello from the server".into()))??;
    let refuse = |code, message: String| AgentMessage::Error {
        request_id: None,
        code,
        message,
    };
    let theirs = match first {
        Ok(ServerMessage::Hello(h)) => h,
        _ => {
            let message = "the first message must be hello".to_owned();
            write_message(
                &mut writer,
                &refuse(ErrorCode::BadRequest, message.clone()),
                0,
            )
            .await?;
            return Err(ControlError::Handshake(message));
        }
    };
    let version = match negotiate(&ours, &theirs) {
        Ok(v) => v,
        Err(e) => {
            write_message(
                &mut writer,
                &refuse(ErrorCode::UnsupportedVersion, e.to_string()),
                0,
            )
            .await?;
            return Err(ControlError::Handshake(e.to_string()));
        }
    };
    tracing::info!(
        version,
        server_version = %theirs.software_version,
        "server connected"
    );

    let (tx, rx) = mpsc::channel::<AgentMessage>(OUTBOX_CAPACITY);
    let mut connection = requests::Connection::new(&tx, version);
    let (generation, mut replaced) = agent.connect(tx);
    let _guard = ConnectionGuard {
        agent: agent.clone(),
        generation,
    };
    let mut writer_task = AbortOnDrop(tokio::spawn(
        write_loop(writer, rx, agent.clone(), version).in_current_span(),
    ));

    loop {
        let message = tokio::select! {
            message = read_message(&mut reader, &mut decoder, &mut buf) => message?,
            _ = &mut writer_task.0 => return Ok(()),
            _ = &mut replaced => {
                tracing::info!("a newer server connection replaces this one");
                return Ok(());
            }
        };
        match message {
            Ok(message) => requests::handle(&agent, &mut connection, message).await,
            Err(e) => {
                tracing::warn!(error = %e, "malformed message from the server");
                agent
                    .send(AgentMessage::Error {
                        request_id: None,
                        code: ErrorCode::BadRequest,
                        message: format!("malformed message: {e}"),
                    })
                    .await;
            }
        }
    }
}

/// Writes what the agent sends: queued messages in order, and session-end
/// reports once everything queued before them is written, so a report
/// never overtakes its session's last output.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<AgentMessage>,
    agent: Arc<Agent>,
    version: u32,
) {
    loop {
        while let Ok(message) = rx.try_recv() {
            if write_or_log(&mut writer, &message, version).await.is_err() {
                return;
            }
        }
        for report in agent.take_reports() {
            if write_or_log(&mut writer, &report, version).await.is_err() {
                // Not delivered: it goes to the next connection.
                agent.report(report);
                return;
            }
        }
        tokio::select! {
            message = rx.recv() => match message {
                Some(message) => {
                    if write_or_log(&mut writer, &message, version).await.is_err() {
                        return;
                    }
                }
                // The agent is stopping: the last reports, then the end.
                None => {
                    for report in agent.take_reports() {
                        if write_or_log(&mut writer, &report, version).await.is_err() {
                            return;
                        }
                    }
                    break;
                }
            },
            () = agent.report_waiting() => {}
        }
    }
    let _ = writer.shutdown().await;
}

async fn write_or_log<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &AgentMessage,
    version: u32,
) -> Result<(), ControlError> {
    let result = write_message(writer, message, version).await;
    if let Err(e) = &result {
        tracing::warn!(error = %e, "writing to the server failed");
    }
    result
}
