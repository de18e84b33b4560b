//! The agent channel as the server reads it: bytes from an agent, which
//! anyone with sudo inside the environment controls. The first byte chooses
//! how the stream is cut into reads; every message decodes or is refused
//! without a panic, the decoder never holds more than one unfinished frame
//! within the limit, and the agent's side reads the server's
//! messages the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_protocol::agent_channel::{AgentMessage, FrameDecoder, ServerMessage};

const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut).max(1);
    let mut agent = FrameDecoder::new(MAX_FRAME);
    let mut server = FrameDecoder::new(MAX_FRAME);
    'stream: for piece in stream.chunks(chunk) {
        agent.push(piece);
        server.push(piece);
        loop {
            match agent.next_message::<AgentMessage>() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                // A frame over the limit ends the connection, as it does in
                // the server; a malformed one is consumed and reading goes on.
                Err(e) if is_too_large(&e) => break 'stream,
                Err(_) => continue,
            }
        }
        loop {
            match server.next_message::<ServerMessage>() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) if is_too_large(&e) => break 'stream,
                Err(_) => continue,
            }
        }
        // All that is left is the start of one frame within the limit.
        assert!(agent.buffered_len() < MAX_FRAME + 4);
        assert!(server.buffered_len() < MAX_FRAME + 4);
    }
});

fn is_too_large(e: &seashell_protocol::agent_channel::FrameError) -> bool {
    matches!(e, seashell_protocol::agent_channel::FrameError::TooLarge { .. })
}
