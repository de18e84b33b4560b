//! Payloads carried inside `ClientMessage`s, and the opening text frame.
//!
//! JSON member names are those of the plugin's `src/message/clientmessage.go`,
//! `handshakemessage.go` and `src/service/service.go`. The plugin is written
//! in Go, whose encoder writes an empty list as `null`; the list members
//! here read `null` as empty so its messages parse.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::time::Duration;

use super::message::{ClientMessage, MessageType, PayloadType};
use crate::Secret;

/// Why a payload could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The payload is not the expected JSON.
    #[error("payload is not valid JSON for this message: {0}")]
    Json(#[from] serde_json::Error),
    /// The message is of another type than the payload belongs to.
    #[error("expected a {expected} message, found {found}")]
    WrongMessageType {
        /// The type the payload belongs to.
        expected: MessageType,
        /// The type of the message.
        found: MessageType,
    },
    /// The message carries another payload type.
    #[error("expected payload type {expected:?}, found {found:?}")]
    WrongPayloadType {
        /// The payload type asked for.
        expected: PayloadType,
        /// The payload type of the message.
        found: PayloadType,
    },
    /// A flag payload is not exactly four bytes.
    #[error("flag payload is {0} bytes, expected 4")]
    BadFlagLength(usize),
    /// A flag payload holds an unknown value.
    #[error("unknown flag value {0}")]
    UnknownFlag(u32),
}

/// The value of `MessageSchemaVersion` in the opening frame.
pub const MESSAGE_SCHEMA_VERSION: &str = "1.0";

/// The first (text) frame a client sends on the data-channel WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDataChannelInput {
    /// Always [`MESSAGE_SCHEMA_VERSION`].
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    /// A fresh UUID chosen by the client.
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// The one-time token from createSession or resumeSession.
    #[serde(rename = "TokenValue")]
    pub token_value: Secret,
    /// An identifier of the client instance.
    #[serde(rename = "ClientId")]
    pub client_id: String,
    /// The client's version string.
    #[serde(rename = "ClientVersion")]
    pub client_version: String,
}

/// Payload of an `acknowledge` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcknowledgeContent {
    /// Type of the acknowledged message, e.g. `output_stream_data`.
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    /// Id of the acknowledged message, hyphenated lowercase UUID.
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    /// Sequence number of the acknowledged message. Senders match
    /// acknowledgements by this number.
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    /// Always `true` from the plugin.
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential_message: bool,
}

impl AcknowledgeContent {
    /// The acknowledgement of `message`, as the plugin writes it.
    pub fn for_message(message: &ClientMessage) -> Self {
        Self {
            message_type: message.message_type.as_str().to_owned(),
            message_id: message.message_id.hyphenated().to_string(),
            sequence_number: message.sequence_number,
            is_sequential_message: true,
        }
    }

    /// The JSON payload bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, PayloadError> {
        Ok(serde_json::to_vec(self)?)
    }
}

/// Payload of a PayloadType 3 (Size) message: the terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeData {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// Payload of a `channel_closed` message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelClosed {
    /// Id of this message.
    #[serde(rename = "MessageId")]
    pub message_id: String,
    /// Creation time, epoch milliseconds written as a string.
    #[serde(rename = "CreatedDate")]
    pub created_date: String,
    /// The session target (for Seashell, the environment).
    #[serde(rename = "DestinationId")]
    pub destination_id: String,
    /// The session being closed.
    #[serde(rename = "SessionId")]
    pub session_id: String,
    /// `channel_closed`.
    #[serde(rename = "MessageType")]
    pub message_type: String,
    /// Schema version, 1.
    #[serde(rename = "SchemaVersion")]
    pub schema_version: i64,
    /// Text the client prints on exit; empty for a plain exit.
    #[serde(rename = "Output")]
    pub output: String,
}

/// The values of a PayloadType 10 (Flag) message, sent by the client as a
/// 4-byte big-endian unsigned integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagPayload {
    /// 1: port forwarding disconnected.
    DisconnectToPort,
    /// 2: the client asks to end the session.
    TerminateSession,
    /// 3: port forwarding failed to connect.
    ConnectToPortError,
}

impl FlagPayload {
    /// The numeric value.
    pub fn to_u32(self) -> u32 {
        match self {
            FlagPayload::DisconnectToPort => 1,
            FlagPayload::TerminateSession => 2,
            FlagPayload::ConnectToPortError => 3,
        }
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        self.to_u32().to_be_bytes()
    }

    /// Parses a flag payload.
    pub fn from_bytes(payload: &[u8]) -> Result<Self, PayloadError> {
        let bytes: [u8; 4] = payload
            .try_into()
            .map_err(|_| PayloadError::BadFlagLength(payload.len()))?;
        match u32::from_be_bytes(bytes) {
            1 => Ok(FlagPayload::DisconnectToPort),
            2 => Ok(FlagPayload::TerminateSession),
            3 => Ok(FlagPayload::ConnectToPortError),
            other => Err(PayloadError::UnknownFlag(other)),
        }
    }
}

/// Session types a `SessionType` action may name.
pub mod session_type {
    /// An interactive shell; what Seashell offers.
    pub const STANDARD_STREAM: &str = "Standard_Stream";
    /// Port forwarding.
    pub const PORT: &str = "Port";
    /// An interactive command; the plugin treats it as a shell.
    pub const INTERACTIVE_COMMANDS: &str = "InteractiveCommands";
    /// A non-interactive command; the plugin treats it as a shell.
    pub const NON_INTERACTIVE_COMMANDS: &str = "NonInteractiveCommands";
}

/// An action the agent asks the client to perform during the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// `SessionType`: tells the client what kind of session this is.
    SessionType,
    /// `KMSEncryption`: end-to-end encryption with a KMS key (Seashell does
    /// not request it).
    KmsEncryption,
    /// Any other action name.
    Other(String),
}

impl ActionType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ActionType::SessionType => "SessionType",
            ActionType::KmsEncryption => "KMSEncryption",
            ActionType::Other(s) => s,
        }
    }
}

impl Serialize for ActionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match name.as_str() {
            "SessionType" => ActionType::SessionType,
            "KMSEncryption" => ActionType::KmsEncryption,
            _ => ActionType::Other(name),
        })
    }
}

/// The outcome of one handshake action, as reported by the client.
///
/// The plugin leaves the status at 0 for actions it does not know (and puts
/// the value 3 in `ActionResult` instead), so 0 and other values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionStatus {
    /// 1.
    Success,
    /// 2.
    Failed,
    /// 3.
    Unsupported,
    /// Any other value, including the plugin's 0.
    Other(i64),
}

impl ActionStatus {
    /// The numeric value.
    pub fn to_i64(self) -> i64 {
        match self {
            ActionStatus::Success => 1,
            ActionStatus::Failed => 2,
            ActionStatus::Unsupported => 3,
            ActionStatus::Other(v) => v,
        }
    }

    /// The variant for a numeric value.
    pub fn from_i64(value: i64) -> Self {
        match value {
            1 => ActionStatus::Success,
            2 => ActionStatus::Failed,
            3 => ActionStatus::Unsupported,
            other => ActionStatus::Other(other),
        }
    }
}

impl Serialize for ActionStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.to_i64())
    }
}

impl<'de> Deserialize<'de> for ActionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(ActionStatus::from_i64)
    }
}

/// Parameters of a `SessionType` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTypeRequest {
    /// One of the [`session_type`] names.
    #[serde(rename = "SessionType")]
    pub session_type: String,
    /// Plugin-specific properties; `null` for a shell.
    #[serde(rename = "Properties", default)]
    pub properties: Value,
}

/// One action in a handshake request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedClientAction {
    /// What to do.
    #[serde(rename = "ActionType")]
    pub action_type: ActionType,
    /// Parameters, whose shape depends on the action.
    #[serde(rename = "ActionParameters", default)]
    pub action_parameters: Value,
}

impl HandshakeRequestPayload {
    /// The request that opens a shell session: one `SessionType` action
    /// naming `Standard_Stream`.
    pub fn standard_stream(agent_version: impl Into<String>) -> Self {
        Self {
            agent_version: agent_version.into(),
            requested_client_actions: vec![RequestedClientAction::session_type(
                session_type::STANDARD_STREAM,
            )],
        }
    }
}

impl HandshakeResponsePayload {
    /// The status the client reported for `action`, if it reported one.
    pub fn action_status(&self, action: &ActionType) -> Option<ActionStatus> {
        self.processed_client_actions
            .iter()
            .find(|a| &a.action_type == action)
            .map(|a| a.action_status)
    }
}

impl ChannelClosed {
    /// The payload closing `session_id`, shaped as the service writes it.
    pub fn new(
        message_id: &uuid::Uuid,
        created_date_ms: u64,
        destination_id: impl Into<String>,
        session_id: impl Into<String>,
        output: impl Into<String>,
    ) -> Self {
        Self {
            message_id: message_id.hyphenated().to_string(),
            created_date: created_date_ms.to_string(),
            destination_id: destination_id.into(),
            session_id: session_id.into(),
            message_type: MessageType::ChannelClosed.as_str().to_owned(),
            schema_version: 1,
            output: output.into(),
        }
    }
}

impl RequestedClientAction {
    /// The `SessionType` action for `session_type` with no properties.
    pub fn session_type(session_type: &str) -> Self {
        let params = serde_json::json!({ "SessionType": session_type, "Properties": null });
        Self {
            action_type: ActionType::SessionType,
            action_parameters: params,
        }
    }

    /// The parameters of a `SessionType` action, if this is one.
    pub fn session_type_request(&self) -> Option<Result<SessionTypeRequest, PayloadError>> {
        (self.action_type == ActionType::SessionType).then(|| {
            SessionTypeRequest::deserialize(&self.action_parameters).map_err(PayloadError::from)
        })
    }
}

/// Payload of a HandshakeRequest (PayloadType 5), sent by the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeRequestPayload {
    /// The agent's version string.
    #[serde(rename = "AgentVersion")]
    pub agent_version: String,
    /// The actions the client must perform.
    #[serde(
        rename = "RequestedClientActions",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

/// The client's report on one requested action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessedClientAction {
    /// The action this reports on.
    #[serde(rename = "ActionType")]
    pub action_type: ActionType,
    /// Its outcome.
    #[serde(rename = "ActionStatus")]
    pub action_status: ActionStatus,
    /// An action-specific result, usually `null`.
    #[serde(rename = "ActionResult", default)]
    pub action_result: Value,
    /// Error text, empty on success.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// Payload of a HandshakeResponse (PayloadType 6), sent by the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponsePayload {
    /// The client's version string.
    #[serde(rename = "ClientVersion")]
    pub client_version: String,
    /// One entry per requested action.
    #[serde(
        rename = "ProcessedClientActions",
        default,
        deserialize_with = "null_as_empty"
    )]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    /// Errors met while processing the actions.
    #[serde(rename = "Errors", default, deserialize_with = "null_as_empty")]
    pub errors: Vec<String>,
}

/// Payload of a HandshakeComplete (PayloadType 7), sent by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeCompletePayload {
    /// How long the handshake took. On the wire: integer nanoseconds (a Go
    /// `time.Duration`).
    #[serde(rename = "HandshakeTimeToComplete", with = "duration_nanos")]
    pub handshake_time_to_complete: Duration,
    /// A message the client prints before the session starts; may be empty.
    #[serde(rename = "CustomerMessage", default)]
    pub customer_message: String,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A `Duration` as integer nanoseconds, like Go's `time.Duration` in JSON.
mod duration_nanos {
    use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let nanos = i64::try_from(d.as_nanos())
            .map_err(|_| S::Error::custom("duration does not fit in i64 nanoseconds"))?;
        s.serialize_i64(nanos)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let nanos = i64::deserialize(d)?;
        let nanos = u64::try_from(nanos).map_err(|_| D::Error::custom("negative duration"))?;
        Ok(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledge_member_names() {
        let ack = AcknowledgeContent {
            message_type: "output_stream_data".into(),
            message_id: "00112233-4455-6677-8899-aabbccddeeff".into(),
            sequence_number: 7,
            is_sequential_message: true,
        };
        let json = String::from_utf8(ack.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"00112233-4455-6677-8899-aabbccddeeff","AcknowledgedMessageSequenceNumber":7,"IsSequentialMessage":true}"#
        );
        let back: AcknowledgeContent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ack);
    }

    #[test]
    fn size_member_names() {
        let size: SizeData = serde_json::from_str(r#"{"cols":120,"rows":40}"#).unwrap();
        assert_eq!(
            size,
            SizeData {
                cols: 120,
                rows: 40
            }
        );
        assert_eq!(
            serde_json::to_string(&size).unwrap(),
            r#"{"cols":120,"rows":40}"#
        );
    }

    #[test]
    fn open_data_channel_input_member_names() {
        let text = r#"{"MessageSchemaVersion":"1.0","RequestId":"9b2f4c1e-0000-4000-8000-000000000001","TokenValue":"tok-123","ClientId":"cli-1","ClientVersion":"1.2.677.0"}"#;
        let open: OpenDataChannelInput = serde_json::from_str(text).unwrap();
        assert_eq!(open.message_schema_version, MESSAGE_SCHEMA_VERSION);
        assert_eq!(open.token_value.expose(), "tok-123");
        assert_eq!(open.client_version, "1.2.677.0");
        assert_eq!(serde_json::to_string(&open).unwrap(), text);
        assert!(!format!("{open:?}").contains("tok-123"));
    }

    #[test]
    fn channel_closed_member_names() {
        let text = r#"{"MessageId":"m","CreatedDate":"1700000000000","DestinationId":"env-1","SessionId":"s-1","MessageType":"channel_closed","SchemaVersion":1,"Output":"bye"}"#;
        let cc: ChannelClosed = serde_json::from_str(text).unwrap();
        assert_eq!(cc.session_id, "s-1");
        assert_eq!(cc.output, "bye");
        assert_eq!(serde_json::to_string(&cc).unwrap(), text);

        let id = uuid::Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        let built = ChannelClosed::new(&id, 1_700_000_000_000, "env-1", "s-1", "bye");
        assert_eq!(built.message_id, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(built.created_date, "1700000000000");
        assert_eq!(built.message_type, "channel_closed");
        assert_eq!(built.schema_version, 1);
    }

    #[test]
    fn handshake_request_as_agent_sends_it() {
        let req = HandshakeRequestPayload::standard_stream("3.3.0.0");
        let json = serde_json::to_string(&req).unwrap();
        // Compared as values: member order inside ActionParameters depends
        // on serde_json's map features, and neither end relies on it.
        let expected: Value = serde_json::from_str(
            r#"{"AgentVersion":"3.3.0.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Standard_Stream","Properties":null}}]}"#,
        )
        .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), expected);
        let back: HandshakeRequestPayload = serde_json::from_str(&json).unwrap();
        let st = back.requested_client_actions[0]
            .session_type_request()
            .unwrap()
            .unwrap();
        assert_eq!(st.session_type, "Standard_Stream");
        assert_eq!(st.properties, Value::Null);
    }

    #[test]
    fn handshake_response_as_the_plugin_writes_it() {
        // Go writes the nil Errors slice as null.
        let text = r#"{"ClientVersion":"1.2.677.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#;
        let resp: HandshakeResponsePayload = serde_json::from_str(text).unwrap();
        assert_eq!(resp.client_version, "1.2.677.0");
        assert!(resp.errors.is_empty());
        assert_eq!(
            resp.action_status(&ActionType::SessionType),
            Some(ActionStatus::Success)
        );
        assert_eq!(resp.action_status(&ActionType::KmsEncryption), None);

        // An action the plugin does not know: status stays 0, result is 3.
        let text = r#"{"ClientVersion":"1","ProcessedClientActions":[{"ActionType":"Frobnicate","ActionStatus":0,"ActionResult":3,"Error":"Unsupported action Frobnicate"}],"Errors":["Unsupported action Frobnicate"]}"#;
        let resp: HandshakeResponsePayload = serde_json::from_str(text).unwrap();
        let action = &resp.processed_client_actions[0];
        assert_eq!(action.action_type, ActionType::Other("Frobnicate".into()));
        assert_eq!(action.action_status, ActionStatus::Other(0));
        assert_eq!(serde_json::to_string(&resp).unwrap(), text);
    }

    #[test]
    fn handshake_complete_duration_is_nanoseconds() {
        let hc = HandshakeCompletePayload {
            handshake_time_to_complete: Duration::from_millis(1500),
            customer_message: String::new(),
        };
        let json = serde_json::to_string(&hc).unwrap();
        assert_eq!(
            json,
            r#"{"HandshakeTimeToComplete":1500000000,"CustomerMessage":""}"#
        );
        assert_eq!(
            serde_json::from_str::<HandshakeCompletePayload>(&json).unwrap(),
            hc
        );
        assert!(serde_json::from_str::<HandshakeCompletePayload>(
            r#"{"HandshakeTimeToComplete":-1,"CustomerMessage":""}"#
        )
        .is_err());
    }

    #[test]
    fn flag_payloads() {
        assert_eq!(FlagPayload::TerminateSession.to_bytes(), [0, 0, 0, 2]);
        assert_eq!(
            FlagPayload::from_bytes(&[0, 0, 0, 1]).unwrap(),
            FlagPayload::DisconnectToPort
        );
        assert_eq!(
            FlagPayload::from_bytes(&[0, 0, 0, 3]).unwrap(),
            FlagPayload::ConnectToPortError
        );
        assert!(matches!(
            FlagPayload::from_bytes(&[0, 0, 2]),
            Err(PayloadError::BadFlagLength(3))
        ));
        assert!(matches!(
            FlagPayload::from_bytes(&[0, 0, 0, 9]),
            Err(PayloadError::UnknownFlag(9))
        ));
    }

    #[test]
    fn action_status_values() {
        for v in [-1, 0, 1, 2, 3, 4] {
            assert_eq!(ActionStatus::from_i64(v).to_i64(), v);
        }
        assert_eq!(ActionStatus::from_i64(3), ActionStatus::Unsupported);
    }
}
