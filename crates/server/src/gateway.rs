//! The data-channel gateway (DESIGN §5): `GET /v1/data-channel/{session_id}`,
//! upgraded to a WebSocket that carries the Session Manager data channel
//! between a client (the console, `seashell connect`, the AWS
//! `session-manager-plugin`) and the agent that owns the shell.
//!
//! 1. [`routes`] refuses a browser whose `Origin` is not the configured
//!    public URL's (403, before the upgrade). No `Origin` header means a
//!    non-browser client, which is allowed: the token is what authorises.
//!    An address that already holds `[limits]
//!    max_pending_upgrades_per_address` sockets whose token is not yet
//!    redeemed gets 429 with `Retry-After`, also before the upgrade.
//! 2. [`accept`] reads the opening text frame ([`OpenDataChannelInput`])
//!    and redeems its one-time token; a bad, expired or reused token closes
//!    the socket with code 1008 and the reason, and nothing is relayed.
//! 3. [`relay`] attaches to the session through the environment's
//!    [`AgentHub`](seashell_runtime::agent_hub::AgentHub) and relays binary
//!    frames both ways, unchanged. Reliability (sequence numbers,
//!    acknowledgements, retransmission) stays at the two ends, so a
//!    dropped socket loses nothing: the client resumes with a new token.
//!
//! Refusals inside a relay, and how the socket closes:
//!
//! | what | close code | why |
//! |---|---|---|
//! | `input_stream_data` with a payload over [`MAX_INPUT_PAYLOAD`] bytes | 1009 | not relayed; see below |
//! | a binary frame that is not a valid `ClientMessage`, or a text frame after the opening one | 1002 / 1003 | a broken client |
//! | the session ended (after the agent's `channel_closed` was relayed) | 1000 | the end |
//! | another connection attached to the same session | 1000 | only one client per session |
//! | the client did not keep up (its attachment's queue overflowed) | 1013 | the client resumes; the agent resends what it missed |
//! | the connection to the agent was lost | 1011 | the client should resume |
//!
//! **Oversized input.** The limit is CloudShell's 65412 characters per
//! input message. Such a frame is not relayed; the gateway relays in its
//! place a frame with the same sequence number and message id and an empty
//! keystroke payload. The agent acknowledges that sequence number like any
//! other; once its acknowledgement has been relayed to the client (or after
//! [`REFUSAL_GRACE`]), the gateway closes the socket with 1009 and a reason
//! naming the size and the limit. So the client's retransmission buffer has
//! let the message go before the close: it is not trapped resending a
//! message that will never be accepted (should it resend it on the next
//! connection anyway, the agent acknowledges the stand-in as a duplicate),
//! and the input stream keeps no gap that would hold back later keystrokes.
//!
//! When the socket closes, the session is detached (the shell keeps
//! running, its output is kept for the next attach). When the agent
//! connection dies, the socket is closed so the client resumes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use seashell_protocol::agent_channel::SessionId;
use seashell_protocol::data_channel::{
    ClientMessage, DecodeLimits, MessageType, OpenDataChannelInput, PayloadType,
    DEFAULT_MAX_PAYLOAD_LEN, PAYLOAD_OFFSET,
};
use seashell_runtime::agent_hub::{Attachment, FrameSender, HubError};
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use crate::envs::StreamGrant;
use crate::error::ApiError;
use crate::metrics::RequestLabels;
use crate::state::AppState;

/// Largest keystroke payload relayed: CloudShell's limit on one input
/// message, 65412 characters.
pub const MAX_INPUT_PAYLOAD: usize = 65412;
/// How long the gateway waits for the agent to acknowledge the stand-in
/// of a refused input message before closing anyway.
pub const REFUSAL_GRACE: Duration = Duration::from_secs(5);
/// How long the gateway waits for the client's answer to its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a client has to send its opening frame.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest WebSocket message accepted: the largest data-channel frame.
const MAX_MESSAGE: usize = PAYLOAD_OFFSET + DEFAULT_MAX_PAYLOAD_LEN;
/// A close reason must fit a control frame (125 bytes, 2 for the code).
const MAX_REASON: usize = 123;

/// The gateway's route, for the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/data-channel/{session_id}", get(data_channel))
}

async fn data_channel(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = check_origin(&headers, &state.config.public_url()) {
        count(&state, "refused_origin");
        return refusal;
    }
    // Until its token is redeemed, a socket is anyone's: each address may
    // hold only so many (docs/security.md §5.9). The permit goes with the
    // upgrade and is given back once the token has been looked at.
    let pending = match state.limits.pending_upgrades.acquire(peer.ip()) {
        Ok(permit) => permit,
        Err(_) => {
            count(&state, "refused_pending_limit");
            tracing::debug!(%peer, "data channel refused: too many pending upgrades");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "5")],
                "Too many data channels from your address are waiting for their opening frame.\n",
            )
                .into_response();
        }
    };
    let span = tracing::info_span!("data_channel", session = %session_id);
    ws.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| {
        async move {
            let envs = state.envs.clone();
            let sid = session_id.clone();
            let redeemed = accept(socket, move |token| async move {
                let grant = envs.redeem_stream_token(&sid, &token).await;
                drop(pending);
                grant
            })
            .await;
            count(&state, if redeemed { "ok" } else { "refused_token" });
        }
        .instrument(span)
    })
}

fn count(state: &AppState, outcome: &str) {
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            service: "data-channel".into(),
            operation: "OpenDataChannel".into(),
            outcome: outcome.into(),
        })
        .inc();
}

/// Refuses (403) a browser request whose `Origin` is not the origin of
/// `public_url`. Requests without `Origin` come from programs, not from
/// pages a user visits, and are allowed.
#[allow(clippy::result_large_err)]
pub fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let expected = origin_of(public_url);
    let given = origin.to_str().ok().and_then(origin_of);
    match (given, expected) {
        (Some(given), Some(expected)) if given == expected => Ok(()),
        _ => {
            tracing::warn!(origin = ?origin, public_url, "request refused: foreign origin");
            Err((
                StatusCode::FORBIDDEN,
                "The Origin of this request is not the Seashell console's.\n",
            )
                .into_response())
        }
    }
}

/// `scheme://host[:port]` in lower case, without the scheme's default
/// port; `None` for anything that is not an absolute http(s) URL (the
/// opaque origin `null` among them).
fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Serves one upgraded socket: reads the opening frame, redeems its token
/// with `redeem`, then [`relay`]s. Returns whether the token was accepted.
pub async fn accept<R, Fut>(mut socket: WebSocket, redeem: R) -> bool
where
    R: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<StreamGrant, ApiError>>,
{
    let opening = match tokio::time::timeout(OPEN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<OpenDataChannelInput>(&text)
            .map_err(|e| format!("the opening frame is not OpenDataChannelInput: {e}")),
        Ok(Some(Ok(_))) => Err("the first frame must be the text OpenDataChannelInput".into()),
        Ok(Some(Err(e))) => {
            tracing::debug!(error = %e, "socket failed before the opening frame");
            return false;
        }
        Ok(None) => return false,
        Err(_) => Err("no opening frame".into()),
    };
    let opening = match opening {
        Ok(o) => o,
        Err(reason) => {
            tracing::info!(%reason, "data channel refused");
            close(socket, close_code::POLICY, &reason).await;
            return false;
        }
    };
    tracing::debug!(
        client_id = %opening.client_id,
        client_version = %opening.client_version,
        request_id = %opening.request_id,
        "opening frame"
    );
    match redeem(opening.token_value.into_inner()).await {
        Ok(grant) => {
            relay(socket, grant).await;
            true
        }
        Err(e) => {
            tracing::info!(code = %e.code, reason = %e.message, "data channel refused");
            close(socket, close_code::POLICY, &e.message).await;
            false
        }
    }
}

/// Why a relay ended.
enum End {
    /// The client closed the socket, or it failed.
    ClientGone,
    /// The attachment ended: replaced, session over, or agent gone.
    AttachmentEnded,
    /// The agent connection closed.
    AgentGone,
    /// The client broke a rule; close with this code and reason.
    Refuse(u16, String),
}

/// Relays frames between `socket` and the session of `grant`, unchanged,
/// until either side ends; then detaches the session (unless it ended or
/// another client took it over) and closes the socket with the reason.
pub async fn relay(socket: WebSocket, grant: StreamGrant) {
    let span = tracing::info_span!(
        "relay",
        session = %grant.session,
        environment = %grant.environment_id,
        principal = %grant.principal_arn,
        mode = ?grant.mode,
    );
    relay_inner(socket, grant).instrument(span).await;
}

async fn relay_inner(socket: WebSocket, grant: StreamGrant) {
    let mut ended = grant.hub.session_events();
    let mut attachment = match grant.hub.attach(&grant.session, grant.mode).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "attaching failed");
            let code = if grant.hub.is_closed() {
                close_code::ERROR
            } else {
                close_code::POLICY
            };
            close(
                socket,
                code,
                &format!("The session cannot be attached: {e}"),
            )
            .await;
            return;
        }
    };
    tracing::info!("client attached");
    let sender = attachment.sender();
    let (mut sink, mut stream) = socket.split();
    let (refusals_tx, mut refusals) = mpsc::channel(1);
    let end = tokio::select! {
        end = to_client(&mut attachment, &mut sink, &mut refusals) => end,
        end = from_client(&mut stream, &sender, &grant.session, &refusals_tx) => end,
        () = grant.hub.closed() => End::AgentGone,
    };
    let mut session_ended = || loop {
        match ended.try_recv() {
            Ok(e) if e.session_id == grant.session => return true,
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return false,
        }
    };
    let (code, reason) = match end {
        End::ClientGone => (None, String::new()),
        End::Refuse(code, reason) => (Some(code), reason),
        End::AgentGone => (
            Some(close_code::ERROR),
            "The connection to the environment was lost; resume the session.".to_owned(),
        ),
        End::AttachmentEnded if grant.hub.is_closed() => (
            Some(close_code::ERROR),
            "The connection to the environment was lost; resume the session.".to_owned(),
        ),
        End::AttachmentEnded if attachment.overflowed() => (
            Some(close_code::AGAIN),
            "The client did not keep up with the output; resume the session.".to_owned(),
        ),
        End::AttachmentEnded if session_ended() => {
            (Some(close_code::NORMAL), "The session ended.".to_owned())
        }
        End::AttachmentEnded => (
            Some(close_code::NORMAL),
            "Another connection attached to this session.".to_owned(),
        ),
    };
    // Detach before closing, so a client that reconnects at once finds
    // the session detached rather than racing this detach.
    if let Err(e) = attachment.detach().await {
        tracing::debug!(error = %e, "detach not sent");
    }
    tracing::info!(?code, %reason, "client detached");
    if let Some(code) = code {
        let sent = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(truncate(&reason)),
            })))
            .await;
        if sent.is_ok() {
            // The closing handshake: read until the client's close, so
            // frames it sent meanwhile are consumed rather than answered
            // by a reset that could destroy the close frame in flight.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    let _ = sink.close().await;
}

/// An input message refused: closing waits for the acknowledgement of its
/// stand-in.
struct Refusal {
    sequence_number: i64,
    reason: String,
}

/// Agent → client.
async fn to_client(
    attachment: &mut Attachment,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    refusals: &mut mpsc::Receiver<Refusal>,
) -> End {
    let mut pending: Option<(Refusal, tokio::time::Instant)> = None;
    loop {
        let deadline = pending.as_ref().map(|(_, d)| *d);
        tokio::select! {
            frame = attachment.next_frame() => {
                let Some(frame) = frame else {
                    return End::AttachmentEnded;
                };
                let acked = pending
                    .as_ref()
                    .is_some_and(|(r, _)| acknowledges_input(&frame, r.sequence_number));
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    return End::ClientGone;
                }
                if acked {
                    if let Some((refusal, _)) = pending.take() {
                        return End::Refuse(close_code::SIZE, refusal.reason);
                    }
                }
            }
            Some(refusal) = refusals.recv(), if pending.is_none() => {
                pending = Some((refusal, tokio::time::Instant::now() + REFUSAL_GRACE));
            }
            () = sleep_until(deadline), if deadline.is_some() => {
                if let Some((refusal, _)) = pending.take() {
                    return End::Refuse(close_code::SIZE, refusal.reason);
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Whether `frame` is the agent's acknowledgement of input message
/// `sequence_number`.
fn acknowledges_input(frame: &[u8], sequence_number: i64) -> bool {
    ClientMessage::decode(frame)
        .ok()
        .filter(|m| m.message_type == MessageType::Acknowledge)
        .and_then(|m| m.acknowledge_content().ok())
        .is_some_and(|a| {
            a.sequence_number == sequence_number
                && a.message_type == MessageType::InputStreamData.as_str()
        })
}

/// Client → agent.
async fn from_client(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    sender: &FrameSender,
    session: &SessionId,
    refusals: &mpsc::Sender<Refusal>,
) -> End {
    let limits = DecodeLimits {
        max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
    };
    while let Some(message) = stream.next().await {
        let frame = match message {
            Ok(Message::Binary(frame)) => frame,
            // Answered by the WebSocket layer.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return End::ClientGone,
            Ok(Message::Text(_)) => {
                return End::Refuse(
                    close_code::UNSUPPORTED,
                    "Only binary data-channel frames may follow the opening frame.".into(),
                )
            }
        };
        let message = match ClientMessage::decode_with(&frame, &limits) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "invalid frame from the client");
                return End::Refuse(
                    close_code::PROTOCOL,
                    format!("Invalid data-channel frame: {e}"),
                );
            }
        };
        let oversize = message.message_type == MessageType::InputStreamData
            && message.payload.len() > MAX_INPUT_PAYLOAD;
        if oversize {
            match refuse_oversize(message, sender, session).await {
                Some(refusal) => {
                    // The first refusal closes the socket; later ones only
                    // get their stand-ins.
                    let _ = refusals.try_send(refusal);
                    continue;
                }
                None => return End::AgentGone,
            }
        }
        // Relayed as received, not re-encoded.
        match sender.send_frame(frame.to_vec()).await {
            Ok(()) => {}
            Err(HubError::NotAttached) => return End::AttachmentEnded,
            Err(_) => return End::AgentGone,
        }
    }
    End::ClientGone
}

/// See the module documentation: an empty stand-in takes the message's
/// sequence number so it is acknowledged and never retransmitted. `None`
/// if the agent is gone.
async fn refuse_oversize(
    message: ClientMessage,
    sender: &FrameSender,
    session: &SessionId,
) -> Option<Refusal> {
    let len = message.payload.len();
    let sequence_number = message.sequence_number;
    tracing::warn!(%session, sequence_number, len, "input message over the limit refused");
    let stand_in = ClientMessage {
        payload_type: PayloadType::Output,
        payload: Vec::new(),
        ..message
    };
    match stand_in.encode() {
        Ok(frame) => sender.send_frame(frame).await.ok()?,
        Err(e) => tracing::warn!(error = %e, "stand-in frame not encodable"),
    }
    Some(Refusal {
        sequence_number,
        reason: format!(
            "Input of {len} bytes refused: one message may carry at most {MAX_INPUT_PAYLOAD}."
        ),
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(truncate(reason)),
        })))
        .await;
    // Wait briefly for the client's close, so the close frame is not lost
    // to a reset.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// `reason` cut at a character boundary to fit a close frame.
fn truncate(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_owned();
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://Shell.Example.com/console/").as_deref(),
            Some("https://shell.example.com")
        );
        assert_eq!(
            origin_of("https://shell.example.com:443").as_deref(),
            Some("https://shell.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc"), None);

        let mut headers = HeaderMap::new();
        assert!(check_origin(&headers, "http://127.0.0.1:8080").is_ok());
        headers.insert(
            header::ORIGIN,
            "http://127.0.0.1:8080".parse().expect("header"),
        );
        assert!(check_origin(&headers, "http://127.0.0.1:8080/").is_ok());
        for foreign in [
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "null",
            "http://evil.example",
        ] {
            headers.insert(header::ORIGIN, foreign.parse().expect("header"));
            let refused = check_origin(&headers, "http://127.0.0.1:8080").expect_err(foreign);
            assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_REASON && long.starts_with(&cut));
        assert_eq!(truncate("short"), "short");
    }
}
