//! Runs one command in an environment through a shell of its own and
//! reports its exit status. The agent's sessions are terminals, so the
//! command is typed into a fresh shell between two markers the output
//! cannot contain by accident: bytes before the first are the shell's
//! echo and prompt, the second carries `$?`.

use serde_json::json;

use crate::api::{ApiError, CloudShell};
use crate::data_channel::{self, Event, Input, SessionTarget};

/// Why a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The session failed or ended before the command did.
    #[error("the session ended before the command finished: {0}")]
    Session(String),
}

/// The line typed into the shell for `command`, and the markers around its
/// output. The markers are written as octal escapes in the typed line, so
/// its echo never contains them.
fn wrapped(command: &str, nonce: &str) -> (String, Vec<u8>, Vec<u8>) {
    let line = format!(
        " stty -echo -onlcr 2>/dev/null; printf '\\036{nonce}S\\036'; ( {command}\n); printf '\\036{nonce}E%d\\036' \"$?\"\r"
    );
    let start = format!("\x1e{nonce}S\x1e").into_bytes();
    let end = format!("\x1e{nonce}E").into_bytes();
    (line, start, end)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs `command` with `sh`-compatible syntax (in bash) in a new session;
/// its output goes to `output` as it arrives. The command's exit status.
#[tracing::instrument(level = "debug", skip(api, output))]
pub async fn run(
    api: &CloudShell,
    environment_id: &str,
    command: &str,
    mut output: impl FnMut(&[u8]),
) -> Result<i32, CommandError> {
    let nonce = format!("{:016x}", rand_u64());
    let tab = format!("seashell-command-{nonce}");
    let reply = api
        .call(
            "createSession",
            &json!({"EnvironmentId": environment_id, "TabId": tab}),
        )
        .await?;
    let field = |name: &str| {
        reply
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| CommandError::Session(format!("createSession answered without {name}")))
    };
    let (session_id, url, token) = (
        field("SessionId")?,
        field("StreamUrl")?,
        field("TokenValue")?,
    );
    let target = SessionTarget {
        api: api.clone(),
        environment_id: environment_id.to_string(),
        session_id: session_id.clone(),
    };
    let mut session = data_channel::spawn(target, url, token);
    let (line, start, end) = wrapped(command, &nonce);
    let mut buffer: Vec<u8> = Vec::new();
    let mut started = false;
    let mut code: Option<i32> = None;
    let mut typed = false;
    while code.is_none() {
        let Some(event) = session.events.recv().await else {
            break;
        };
        match event {
            Event::Ready if !typed => {
                typed = true;
                let _ = session
                    .input
                    .send(Input::Keys(line.clone().into_bytes()))
                    .await;
            }
            Event::Output(bytes) => {
                buffer.extend_from_slice(&bytes);
                if !started {
                    match find(&buffer, &start) {
                        Some(i) => {
                            buffer.drain(..i + start.len());
                            started = true;
                        }
                        None => continue,
                    }
                }
                if let Some(i) = find(&buffer, &end) {
                    output(&buffer[..i]);
                    let rest = &buffer[i + end.len()..];
                    if let Some(close) = rest.iter().position(|b| *b == 0x1e) {
                        code = std::str::from_utf8(&rest[..close])
                            .ok()
                            .and_then(|s| s.parse().ok());
                        if code.is_none() {
                            return Err(CommandError::Session("unreadable exit status".into()));
                        }
                    } else {
                        // The status is still on its way.
                        buffer.drain(..i);
                    }
                } else {
                    // Keep what could be the start of the end marker.
                    let keep = end.len().min(buffer.len());
                    let flush = buffer.len() - keep;
                    output(&buffer[..flush]);
                    buffer.drain(..flush);
                }
            }
            Event::Ended(text) | Event::Failed(text) => {
                return Err(CommandError::Session(if text.is_empty() {
                    "the shell exited".into()
                } else {
                    text
                }))
            }
            _ => {}
        }
    }
    drop(session);
    // The shell stays until DeleteSession ends it: had it exited by itself,
    // its last output could race the session's end.
    let _ = api
        .call(
            "deleteSession",
            &json!({"EnvironmentId": environment_id, "SessionId": session_id}),
        )
        .await;
    code.ok_or_else(|| CommandError::Session("no exit status".into()))
}

/// A random number for the markers and the private tab.
fn rand_u64() -> u64 {
    let id = uuid::Uuid::new_v4();
    let bytes = id.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_line_never_holds_its_markers() {
        let (line, start, end) = wrapped("echo hi", "abc");
        assert!(find(line.as_bytes(), &start).is_none());
        assert!(find(line.as_bytes(), &end).is_none());
        assert!(line.contains("( echo hi\n)"));
    }
}
