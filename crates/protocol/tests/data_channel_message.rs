//! The `ClientMessage` frame: golden bytes, round trips, malformed input.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use seashell_protocol::data_channel::{
    flags, AcknowledgeContent, ChannelClosed, ClientMessage, DecodeError, DecodeLimits,
    MessageType, PayloadError, PayloadType, SizeData, HEADER_LENGTH, PAYLOAD_OFFSET,
};
use uuid::Uuid;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `input_stream_data`, sequence 5, payload "abc", written out field by
/// field from the layout in the plugin's `clientmessage.go`:
///
/// * HeaderLength 116 = 0x74.
/// * "input_stream_data" is 17 ASCII bytes, then 15 spaces (0x20) to 32.
/// * SchemaVersion 1.
/// * CreatedDate 1 700 000 000 000 ms = 0x0000_018B_CFE5_6800
///   (395 * 2^32 + 3 487 918 080; 395 = 0x18B, 3 487 918 080 = 0xCFE56800).
/// * SequenceNumber 5, Flags 0.
/// * MessageId 00112233-4455-6677-8899-aabbccddeeff: the plugin's `putUuid`
///   writes the least significant half (bytes 8..16 of the UUID) first, so
///   the wire has 8899aabbccddeeff then 0011223344556677.
/// * PayloadDigest SHA-256("abc"), the FIPS 180-2 example value
///   ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad.
/// * PayloadType 1 (Output), PayloadLength 3, Payload 61 62 63.
///
/// The plugin's `SerializeClientMessage`, given the same fields, writes
/// exactly these bytes.
const GOLDEN_INPUT: &str = "
    00000074
    696e7075745f73747265616d5f64617461 202020202020202020202020202020
    00000001
    0000018bcfe56800
    0000000000000005
    0000000000000000
    8899aabbccddeeff 0011223344556677
    ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    00000001
    00000003
    616263";

fn golden_input_message() -> ClientMessage {
    ClientMessage {
        message_type: MessageType::InputStreamData,
        schema_version: 1,
        created_date: 1_700_000_000_000,
        sequence_number: 5,
        flags: 0,
        message_id: Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap(),
        payload_type: PayloadType::Output,
        payload: b"abc".to_vec(),
    }
}

/// `start_publication` with an empty payload, a negative sequence number
/// and SYN|FIN set:
///
/// * "start_publication" is 17 bytes + 15 spaces.
/// * CreatedDate 1; SequenceNumber -2 is two's complement 0xFFFF_FFFF_FFFF_FFFE.
/// * Flags 3.
/// * MessageId 0f0e0d0c-0b0a-0908-0706-050403020100 → low half
///   0706050403020100 first, then 0f0e0d0c0b0a0908.
/// * Digest SHA-256 of nothing: e3b0c442 98fc1c14 9afbf4c8 996fb924
///   27ae41e4 649b934c a495991b 7852b855.
/// * PayloadType 12 (ExitCode), PayloadLength 0, no payload.
///
/// (The plugin's encoder refuses an empty payload, so it never sends one,
/// but its decoder accepts this frame.)
const GOLDEN_START: &str = "
    00000074
    73746172745f7075626c69636174696f6e 202020202020202020202020202020
    00000001
    0000000000000001
    fffffffffffffffe
    0000000000000003
    0706050403020100 0f0e0d0c0b0a0908
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    0000000c
    00000000";

fn golden_start_message() -> ClientMessage {
    ClientMessage {
        message_type: MessageType::StartPublication,
        schema_version: 1,
        created_date: 1,
        sequence_number: -2,
        flags: flags::SYN | flags::FIN,
        message_id: Uuid::parse_str("0f0e0d0c-0b0a-0908-0706-050403020100").unwrap(),
        payload_type: PayloadType::ExitCode,
        payload: Vec::new(),
    }
}

#[test]
fn golden_input_encodes_and_decodes() {
    let bytes = hex(GOLDEN_INPUT);
    assert_eq!(bytes.len(), 123);
    assert_eq!(golden_input_message().encode().unwrap(), bytes);
    assert_eq!(
        ClientMessage::decode(&bytes).unwrap(),
        golden_input_message()
    );
}

#[test]
fn golden_start_publication_encodes_and_decodes() {
    let bytes = hex(GOLDEN_START);
    assert_eq!(bytes.len(), PAYLOAD_OFFSET);
    assert_eq!(golden_start_message().encode().unwrap(), bytes);
    assert_eq!(
        ClientMessage::decode(&bytes).unwrap(),
        golden_start_message()
    );
}

#[test]
fn every_message_type_name_fits_and_round_trips() {
    for t in MessageType::ALL {
        let mut m = golden_input_message();
        m.message_type = t;
        let bytes = m.encode().unwrap();
        let field = &bytes[4..36];
        assert!(field.starts_with(t.as_str().as_bytes()));
        assert!(field[t.as_str().len()..].iter().all(|&b| b == b' '));
        assert_eq!(ClientMessage::decode(&bytes).unwrap(), m);
    }
}

#[test]
fn payload_type_numbers_are_the_plugins() {
    let expected = [
        (PayloadType::Unspecified, 0),
        (PayloadType::Output, 1),
        (PayloadType::Error, 2),
        (PayloadType::Size, 3),
        (PayloadType::Parameter, 4),
        (PayloadType::HandshakeRequest, 5),
        (PayloadType::HandshakeResponse, 6),
        (PayloadType::HandshakeComplete, 7),
        (PayloadType::EncChallengeRequest, 8),
        (PayloadType::EncChallengeResponse, 9),
        (PayloadType::Flag, 10),
        (PayloadType::StdErr, 11),
        (PayloadType::ExitCode, 12),
        (PayloadType::Other(99), 99),
    ];
    for (t, n) in expected {
        assert_eq!(t.to_u32(), n);
        assert_eq!(PayloadType::from_u32(n), t);
    }
}

#[test]
fn acknowledge_is_shaped_like_the_plugins() {
    let received = golden_input_message();
    let id = Uuid::parse_str("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8").unwrap();
    let ack = ClientMessage::acknowledge(&received, id, 1_700_000_000_123).unwrap();
    let bytes = ack.encode().unwrap();

    // Header fields the plugin's SerializeClientMessageWithAcknowledgeContent
    // sets: type "acknowledge", sequence 0, flags 3, payload type left 0.
    assert_eq!(&bytes[0..4], &HEADER_LENGTH.to_be_bytes());
    assert_eq!(&bytes[4..15], b"acknowledge");
    assert!(bytes[15..36].iter().all(|&b| b == b' '));
    assert_eq!(&bytes[48..56], &0i64.to_be_bytes());
    assert_eq!(&bytes[56..64], &3u64.to_be_bytes());
    assert_eq!(&bytes[112..116], &0u32.to_be_bytes());
    let payload = &bytes[PAYLOAD_OFFSET..];
    assert_eq!(
        std::str::from_utf8(payload).unwrap(),
        r#"{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"00112233-4455-6677-8899-aabbccddeeff","AcknowledgedMessageSequenceNumber":5,"IsSequentialMessage":true}"#
    );

    let decoded = ClientMessage::decode(&bytes).unwrap();
    let content = decoded.acknowledge_content().unwrap();
    assert_eq!(content, AcknowledgeContent::for_message(&received));
    assert!(matches!(
        received.acknowledge_content(),
        Err(PayloadError::WrongMessageType { .. })
    ));
}

#[test]
fn typed_payload_access() {
    let mut m = golden_input_message();
    m.payload_type = PayloadType::Size;
    m.payload = br#"{"cols":80,"rows":24}"#.to_vec();
    let m = ClientMessage::decode(&m.encode().unwrap()).unwrap();
    m.expect_payload_type(PayloadType::Size).unwrap();
    assert_eq!(
        m.payload_json::<SizeData>().unwrap(),
        SizeData { cols: 80, rows: 24 }
    );
    assert!(matches!(
        m.expect_payload_type(PayloadType::Output),
        Err(PayloadError::WrongPayloadType { .. })
    ));
    let mut bad = m.clone();
    bad.payload = b"{not json".to_vec();
    assert!(matches!(
        bad.payload_json::<SizeData>(),
        Err(PayloadError::Json(_))
    ));
}

#[test]
fn channel_closed_round_trip() {
    let id = Uuid::from_u128(5);
    let content = ChannelClosed::new(&id, 1_700_000_000_000, "env-1", "s-1", "");
    let m = ClientMessage::channel_closed(&content, id, 1_700_000_000_000).unwrap();
    let decoded = ClientMessage::decode(&m.encode().unwrap()).unwrap();
    assert_eq!(decoded.message_type, MessageType::ChannelClosed);
    assert_eq!(decoded.channel_closed_content().unwrap(), content);
    assert!(golden_input_message().channel_closed_content().is_err());
}

#[test]
fn debug_output_hides_the_payload() {
    let mut m = golden_input_message();
    m.payload = b"hunter2".to_vec();
    let debug = format!("{m:?}");
    assert!(debug.contains("payload_len: 7"), "{debug}");
    assert!(!debug.contains("104"), "{debug}"); // 'h'
}

// Frames written by the plugin's own serializer (`SerializeClientMessage`
// and `SerializeClientMessageWithAcknowledgeContent` in `messageparser.go`,
// run unmodified), with random message ids and, for the acknowledgement, the
// clock's creation date. Seashell must read them and write them back byte
// for byte.

/// An acknowledgement of `output_stream_data` number 9.
const PLUGIN_ACK: &str = "
    0000007461636b6e6f776c6564676520202020202020202020202020202020202020202000000001000001a20d7a03f8
    0000000000000000000000000000000392b03ad8409a6378161b850c44ad4a606a7334e33d981f5cf19ab53c7027ea50
    72bc196543a6311bff2e55bc02371cd700000000000000b07b2241636b6e6f776c65646765644d657373616765547970
    65223a226f75747075745f73747265616d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a
    2230303131323233332d343435352d363637372d383839392d616162626363646465656666222c2241636b6e6f776c65
    646765644d65737361676553657175656e63654e756d626572223a392c22497353657175656e7469616c4d6573736167
    65223a747275657d";

/// A HandshakeResponse accepting the `SessionType` action; Go wrote the
/// empty `Errors` list as `null`.
const PLUGIN_HANDSHAKE_RESPONSE: &str = "
    00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800
    00000000000000000000000000000000abf16f001950cb832b62892a96a146fb035056b24ece59f84a6ba856caba412d
    e915a64e738063c9d37bc4a755e5599700000006000000937b22436c69656e7456657273696f6e223a22312e322e3637
    372e30222c2250726f636573736564436c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a225365
    7373696f6e54797065222c22416374696f6e537461747573223a312c22416374696f6e526573756c74223a6e756c6c2c
    224572726f72223a22227d5d2c224572726f7273223a6e756c6c7d";

/// A TerminateSession flag (PayloadType 10, payload u32 2), sequence 1.
const PLUGIN_FLAG: &str = "
    00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800
    000000000000000100000000000000008b2bfdcf2356bf1db4aeed2663614c14433ebf5bc03dffa38536673207a21281
    612cef5faa9bc7a4d5b9be2fdb12cf1a0000000a0000000400000002";

#[test]
fn frames_written_by_the_plugin_decode_and_re_encode_identically() {
    use seashell_protocol::data_channel::{
        ActionStatus, ActionType, FlagPayload, HandshakeResponsePayload,
    };

    let bytes = hex(PLUGIN_ACK);
    let ack = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(ack.message_type, MessageType::Acknowledge);
    assert_eq!(ack.sequence_number, 0);
    assert_eq!(ack.flags, flags::ACKNOWLEDGE);
    assert_eq!(ack.payload_type, PayloadType::Unspecified);
    assert_eq!(
        ack.message_id,
        Uuid::parse_str("161b850c-44ad-4a60-92b0-3ad8409a6378").unwrap()
    );
    let content = ack.acknowledge_content().unwrap();
    assert_eq!(content.message_type, "output_stream_data");
    assert_eq!(content.message_id, "00112233-4455-6677-8899-aabbccddeeff");
    assert_eq!(content.sequence_number, 9);
    assert!(content.is_sequential_message);
    assert_eq!(ack.encode().unwrap(), bytes);

    let bytes = hex(PLUGIN_HANDSHAKE_RESPONSE);
    let resp = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(resp.message_type, MessageType::InputStreamData);
    resp.expect_payload_type(PayloadType::HandshakeResponse)
        .unwrap();
    let payload: HandshakeResponsePayload = resp.payload_json().unwrap();
    assert_eq!(payload.client_version, "1.2.677.0");
    assert_eq!(
        payload.action_status(&ActionType::SessionType),
        Some(ActionStatus::Success)
    );
    assert!(payload.errors.is_empty());
    assert_eq!(resp.encode().unwrap(), bytes);

    let bytes = hex(PLUGIN_FLAG);
    let flag = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(flag.sequence_number, 1);
    assert_eq!(flag.payload_type, PayloadType::Flag);
    assert_eq!(
        FlagPayload::from_bytes(&flag.payload).unwrap(),
        FlagPayload::TerminateSession
    );
    assert_eq!(
        flag.message_id,
        Uuid::parse_str("b4aeed26-6361-4c14-8b2b-fdcf2356bf1d").unwrap()
    );
    assert_eq!(flag.encode().unwrap(), bytes);
}

// ---- malformed input: one test per error ----

fn decode_err(bytes: &[u8]) -> DecodeError {
    ClientMessage::decode(bytes).unwrap_err()
}

#[test]
fn short_buffers_are_truncated() {
    let bytes = hex(GOLDEN_INPUT);
    assert_eq!(decode_err(&[]), DecodeError::Truncated { len: 0 });
    assert_eq!(decode_err(&bytes[..4]), DecodeError::Truncated { len: 4 });
    assert_eq!(
        decode_err(&bytes[..PAYLOAD_OFFSET - 1]),
        DecodeError::Truncated { len: 119 }
    );
}

#[test]
fn header_length_must_be_116() {
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[3] = 0x75;
    assert_eq!(decode_err(&bytes), DecodeError::BadHeaderLength(117));
    bytes[..4].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(decode_err(&bytes), DecodeError::BadHeaderLength(0));
}

#[test]
fn message_type_errors() {
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[4] = 0xff;
    assert_eq!(decode_err(&bytes), DecodeError::NonUtf8MessageType);

    let mut bytes = hex(GOLDEN_INPUT);
    bytes[4..36].fill(b' ');
    assert_eq!(decode_err(&bytes), DecodeError::MissingMessageType);
    bytes[4..36].fill(0);
    assert_eq!(decode_err(&bytes), DecodeError::MissingMessageType);

    let mut bytes = hex(GOLDEN_INPUT);
    bytes[4 + 16] = b'x'; // input_stream_dat[x]
    assert_eq!(
        decode_err(&bytes),
        DecodeError::UnknownMessageType("input_stream_datx".into())
    );
}

#[test]
fn message_type_padding_is_trimmed_like_the_plugin() {
    // The plugin strips NULs, then white space, from both ends.
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[4 + 17..36].fill(0);
    assert_eq!(
        ClientMessage::decode(&bytes).unwrap(),
        golden_input_message()
    );

    let mut bytes = hex(GOLDEN_INPUT);
    let mut field = [b' '; 32];
    field[2..19].copy_from_slice(b"input_stream_data");
    field[0] = 0;
    bytes[4..36].copy_from_slice(&field);
    assert_eq!(
        ClientMessage::decode(&bytes).unwrap(),
        golden_input_message()
    );
}

#[test]
fn created_date_is_required_except_on_publication_notices() {
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[40..48].fill(0);
    assert_eq!(decode_err(&bytes), DecodeError::MissingCreatedDate);

    let mut bytes = hex(GOLDEN_START);
    bytes[40..48].fill(0);
    assert_eq!(ClientMessage::decode(&bytes).unwrap().created_date, 0);
}

#[test]
fn payload_length_errors() {
    let bytes = hex(GOLDEN_INPUT);

    let mut past = bytes.clone();
    past[116..120].copy_from_slice(&4u32.to_be_bytes());
    assert_eq!(
        decode_err(&past),
        DecodeError::PayloadPastEnd {
            declared: 4,
            available: 3
        }
    );

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        decode_err(&trailing),
        DecodeError::TrailingBytes {
            declared: 3,
            available: 4
        }
    );

    let mut huge = bytes.clone();
    huge[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode_err(&huge),
        DecodeError::PayloadTooLarge { len: u32::MAX, .. }
    ));

    let limits = DecodeLimits { max_payload_len: 2 };
    assert_eq!(
        ClientMessage::decode_with(&bytes, &limits).unwrap_err(),
        DecodeError::PayloadTooLarge { len: 3, max: 2 }
    );
    let limits = DecodeLimits { max_payload_len: 3 };
    assert!(ClientMessage::decode_with(&bytes, &limits).is_ok());
}

#[test]
fn digest_must_match_a_non_empty_payload() {
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[122] = b'd'; // "abd"
    assert_eq!(decode_err(&bytes), DecodeError::DigestMismatch);

    let mut bytes = hex(GOLDEN_INPUT);
    bytes[80] ^= 1;
    assert_eq!(decode_err(&bytes), DecodeError::DigestMismatch);

    // The plugin checks the digest only when there is a payload...
    let mut m = golden_input_message();
    m.payload.clear();
    let mut bytes = m.encode().unwrap();
    bytes[80..112].fill(0);
    assert!(ClientMessage::decode(&bytes).is_ok());

    // ...and never on publication notices.
    let mut m = golden_start_message();
    m.payload = b"x".to_vec();
    let mut bytes = m.encode().unwrap();
    bytes[80..112].fill(0);
    assert!(ClientMessage::decode(&bytes).is_ok());
}

#[test]
fn unknown_payload_types_survive() {
    let mut bytes = hex(GOLDEN_INPUT);
    bytes[112..116].copy_from_slice(&99u32.to_be_bytes());
    let m = ClientMessage::decode(&bytes).unwrap();
    assert_eq!(m.payload_type, PayloadType::Other(99));
    assert_eq!(m.encode().unwrap(), bytes);
}

// ---- properties ----

fn any_message() -> impl Strategy<Value = ClientMessage> {
    (
        prop::sample::select(MessageType::ALL.to_vec()),
        any::<u32>(),
        1u64..,
        any::<i64>(),
        any::<u64>(),
        any::<u128>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(message_type, schema_version, created_date, seq, flags, id, pt, payload)| {
                ClientMessage {
                    message_type,
                    schema_version,
                    created_date,
                    sequence_number: seq,
                    flags,
                    message_id: Uuid::from_u128(id),
                    payload_type: PayloadType::from_u32(pt),
                    payload,
                }
            },
        )
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = ClientMessage::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics(
        edits in prop::collection::vec((0usize..130, any::<u8>()), 1..8),
        cut in 0usize..140,
    ) {
        let mut bytes = hex(GOLDEN_INPUT);
        for (at, value) in edits {
            if let Some(b) = bytes.get_mut(at) {
                *b = value;
            }
        }
        bytes.truncate(cut);
        let _ = ClientMessage::decode(&bytes);
    }

    #[test]
    fn encode_then_decode_round_trips(m in any_message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(bytes.len(), PAYLOAD_OFFSET + m.payload.len());
        prop_assert_eq!(ClientMessage::decode(&bytes).unwrap(), m);
    }
}
