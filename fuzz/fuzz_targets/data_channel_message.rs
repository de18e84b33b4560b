//! Data-channel frames (one WebSocket binary message each, as a browser or
//! the AWS session plugin sends them): any bytes in, never a panic; a frame
//! that decodes encodes to a frame that decodes to the same message (the
//! bytes may differ: padding of the type name, the digest of exempt
//! messages), and its payload readers refuse or accept without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_protocol::data_channel::{ClientMessage, DecodeLimits, FlagPayload};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    let Ok(message) = ClientMessage::decode_with(data, &limits) else {
        return;
    };
    let encoded = message.encode().expect("a decoded frame encodes");
    assert!(
        ClientMessage::decode_with(&encoded, &limits) == Ok(message.clone()),
        "decode, encode, decode gives the same message"
    );
    let _ = message.acknowledge_content();
    let _ = message.channel_closed_content();
    let _ = message.payload_json::<serde_json::Value>();
    let _ = FlagPayload::from_bytes(&message.payload);
});
