//! A test harness: runs the real agent binary and plays the Seashell server
//! (control channel) and a data-channel client against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use seashell_protocol::agent_channel::{
    encode_frame, AgentMessage, AttachMode, FrameDecoder, Hello, RequestId, Role, ServerMessage,
    SessionId, Shell, DEFAULT_MAX_FRAME_LEN,
};
use seashell_protocol::data_channel::{
    ActionStatus, ActionType, ChannelClosed, ClientMessage, HandshakeResponsePayload, MessageType,
    PayloadType, ProcessedClientAction, Receive, ReorderBuffer, SizeData, Uuid,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Generous bound on any single wait; nothing asserts on timing below it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The token the tests' agents require on the credentials endpoint.
pub const TOKEN: &str = "test-token-0123456789abcdef";

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A running agent, stopped (and its shells with it) when dropped.
pub struct AgentProcess {
    child: Option<Child>,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub credentials_addr: SocketAddr,
    _home_dir: Option<tempfile::TempDir>,
    _run_dir: tempfile::TempDir,
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Makes `home` usable by the shells' user, as the runtime does with the
/// home volume.
pub fn prepare_home(home: &Path) {
    if is_root() {
        std::os::unix::fs::chown(home, Some(1000), Some(1000)).unwrap();
    }
}

impl AgentProcess {
    /// Starts an agent with a fresh temporary home.
    pub fn start() -> Self {
        let home = tempfile::Builder::new()
            .prefix("seashell-agent-home")
            .tempdir()
            .unwrap();
        prepare_home(home.path());
        let path = home.path().to_path_buf();
        Self::start_with_home(&path, Some(home))
    }

    /// Starts an agent serving `home`.
    pub fn start_with_home(home: &Path, owned: Option<tempfile::TempDir>) -> Self {
        let run_dir = tempfile::Builder::new()
            .prefix("seashell-agent-run")
            .tempdir()
            .unwrap();
        let socket = run_dir.path().join("agent.sock");
        let credentials_addr = free_port();
        // The log goes to a file, so tests can check what it holds (and
        // what it must never hold).
        let log = std::fs::File::create(run_dir.path().join("agent.log")).unwrap();
        // SEASHELL_AGENT_TEST_BIN runs the suite against another build,
        // e.g. the static one from scripts/build-agent.sh.
        let binary = std::env::var_os("SEASHELL_AGENT_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_seashell-agent")));
        // In its own session, as under a container runtime, where the agent
        // leads a session without a controlling terminal: then opening a
        // terminal carelessly would make it the agent's own.
        let child = Command::new("setsid")
            .arg(binary)
            .arg("--socket")
            .arg(&socket)
            .arg("--home")
            .arg(home)
            .arg("--credentials-addr")
            .arg(credentials_addr.to_string())
            .arg("--environment-id")
            .arg("env-test")
            .env("SEASHELL_AGENT_CREDENTIALS_TOKEN", TOKEN)
            .env("SEASHELL_AGENT_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let agent = Self {
            child: Some(child),
            home: home.to_path_buf(),
            socket,
            credentials_addr,
            _home_dir: owned,
            _run_dir: run_dir,
        };
        let deadline = Instant::now() + TIMEOUT;
        while !(agent.socket.exists() && TcpStream::connect(agent.credentials_addr).is_ok()) {
            assert!(Instant::now() < deadline, "agent did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// What the agent has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._run_dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap()
    }

    /// Sends SIGTERM and waits for the agent to exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("agent did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The client end of one session's data channel.
#[derive(Default)]
pub struct DataClient {
    next_input: i64,
    incoming: ReorderBuffer<ClientMessage>,
    /// Output bytes delivered, in order.
    pub output: Vec<u8>,
    /// Sequence numbers delivered, in order.
    pub delivered: Vec<i64>,
    /// Stream messages received that were already delivered.
    pub duplicates: usize,
    /// Whether to acknowledge what arrives.
    pub ack: bool,
    /// Whether to throw away everything that arrives (a lost connection).
    pub discard: bool,
    pub handshake_complete: bool,
    pub closed: bool,
    /// The text of the `channel_closed` message, once it came.
    pub closed_output: String,
    /// Output bytes delivered after HandshakeComplete, in order, one entry
    /// per message.
    pub messages: Vec<Vec<u8>>,
}

impl DataClient {
    pub fn new() -> Self {
        Self {
            ack: true,
            ..Self::default()
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    fn input_frame(&mut self, payload_type: PayloadType, payload: Vec<u8>) -> Vec<u8> {
        let seq = self.next_input;
        self.next_input += 1;
        ClientMessage::stream(
            MessageType::InputStreamData,
            seq,
            payload_type,
            payload,
            Uuid::new_v4(),
            now_ms(),
        )
        .encode()
        .unwrap()
    }

    /// Handles a frame from the agent; returns frames to send back.
    fn on_frame(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        if self.discard {
            return vec![];
        }
        let m = ClientMessage::decode(frame).unwrap();
        let mut replies = vec![];
        match m.message_type {
            MessageType::OutputStreamData => {
                let ack = ClientMessage::acknowledge(&m, Uuid::new_v4(), now_ms())
                    .unwrap()
                    .encode()
                    .unwrap();
                let seq = m.sequence_number;
                match self.incoming.receive(seq, m) {
                    Receive::Deliver(messages) => {
                        for m in messages {
                            self.delivered.push(m.sequence_number);
                            replies.extend(self.deliver(m));
                        }
                    }
                    Receive::Duplicate => self.duplicates += 1,
                    Receive::Buffered | Receive::Overflow => {}
                }
                if self.ack {
                    replies.push(ack);
                }
            }
            MessageType::ChannelClosed => {
                let content: ChannelClosed = m.payload_json().unwrap();
                self.closed_output = content.output;
                self.closed = true;
            }
            _ => {}
        }
        replies
    }

    fn deliver(&mut self, m: ClientMessage) -> Vec<Vec<u8>> {
        match m.payload_type {
            PayloadType::HandshakeRequest => {
                let response = HandshakeResponsePayload {
                    client_version: "test".into(),
                    processed_client_actions: vec![ProcessedClientAction {
                        action_type: ActionType::SessionType,
                        action_status: ActionStatus::Success,
                        action_result: serde_json::Value::Null,
                        error: String::new(),
                    }],
                    errors: vec![],
                };
                vec![self.input_frame(
                    PayloadType::HandshakeResponse,
                    serde_json::to_vec(&response).unwrap(),
                )]
            }
            PayloadType::HandshakeComplete => {
                self.handshake_complete = true;
                vec![]
            }
            PayloadType::Output => {
                self.output.extend_from_slice(&m.payload);
                self.messages.push(m.payload);
                vec![]
            }
            _ => vec![],
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Plays the Seashell server on the control socket, and the clients of
/// each session's data channel.
pub struct Server {
    stream: UnixStream,
    decoder: FrameDecoder,
    next_request: u64,
    inbox: VecDeque<AgentMessage>,
    pub sessions: HashMap<SessionId, DataClient>,
}

pub fn sid(s: &str) -> SessionId {
    SessionId(s.to_owned())
}

impl Server {
    /// Connects and exchanges hellos.
    pub async fn connect(agent: &AgentProcess) -> Self {
        Self::connect_with(
            agent,
            Hello::new(Role::Server, "test").with_environment("env-test"),
        )
        .await
    }

    /// Connects and exchanges hellos, sending `hello` (e.g. an older
    /// version range).
    pub async fn connect_with(agent: &AgentProcess, hello: Hello) -> Self {
        let stream = UnixStream::connect(&agent.socket).await.unwrap();
        let mut server = Self {
            stream,
            decoder: FrameDecoder::default(),
            next_request: 1,
            inbox: VecDeque::new(),
            sessions: HashMap::new(),
        };
        server.send(&ServerMessage::Hello(hello)).await;
        match server.read().await {
            AgentMessage::Hello(h) => assert_eq!(h.role, Role::Agent),
            other => panic!("expected hello, got {other:?}"),
        }
        server
    }

    pub async fn send(&mut self, message: &ServerMessage) {
        let frame = encode_frame(message, DEFAULT_MAX_FRAME_LEN).unwrap();
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Waits until the agent closes this connection, ignoring what it
    /// still sends.
    pub async fn wait_closed(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut buf))
                .await
                .expect("the agent kept the connection open")
                .unwrap_or(0);
            if n == 0 {
                return;
            }
        }
    }

    /// Writes bytes as they are, e.g. a malformed frame.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Reads the next message from the agent, whatever it is.
    async fn read(&mut self) -> AgentMessage {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(m) = self.decoder.next_message::<AgentMessage>().unwrap() {
                return m;
            }
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut buf))
                .await
                .expect("agent went silent")
                .unwrap();
            assert!(n > 0, "agent closed the control connection");
            self.decoder.push(&buf[..n]);
        }
    }

    /// Reads until `deadline`; returns `None` then.
    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Option<AgentMessage> {
        tokio::time::timeout_at(deadline, self.read()).await.ok()
    }

    /// Processes data-channel frames as a client would; returns other
    /// messages.
    async fn dispatch(&mut self, message: AgentMessage) -> Option<AgentMessage> {
        match message {
            AgentMessage::DataChannel { session_id, frame } => {
                let replies = match self.sessions.get_mut(&session_id) {
                    Some(client) => client.on_frame(frame.as_slice()),
                    None => vec![],
                };
                for reply in replies {
                    // The agent may be gone (a stop test); acknowledgements
                    // then have nowhere to go, which is fine.
                    let message = ServerMessage::DataChannel {
                        session_id: session_id.clone(),
                        frame: reply.into(),
                    };
                    let frame = encode_frame(&message, DEFAULT_MAX_FRAME_LEN).unwrap();
                    let _ = self.stream.write_all(&frame).await;
                }
                None
            }
            other => Some(other),
        }
    }

    /// Keeps the data channels going for `duration`.
    pub async fn pump_for(&mut self, duration: Duration) {
        let deadline = tokio::time::Instant::now() + duration;
        while let Some(m) = self.read_until(deadline).await {
            if let Some(other) = self.dispatch(m).await {
                self.inbox.push_back(other);
            }
        }
    }

    /// Keeps the data channels going until a non-data message matches.
    pub async fn wait_for(&mut self, what: impl Fn(&AgentMessage) -> bool) -> AgentMessage {
        if let Some(i) = self.inbox.iter().position(&what) {
            return self.inbox.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let m = self
                .read_until(deadline)
                .await
                .expect("timed out waiting for a message");
            if let Some(other) = self.dispatch(m).await {
                if what(&other) {
                    return other;
                }
                self.inbox.push_back(other);
            }
        }
    }

    /// A message already received that matches `what`, without waiting.
    pub fn take_received(&mut self, what: impl Fn(&AgentMessage) -> bool) -> Option<AgentMessage> {
        let i = self.inbox.iter().position(what)?;
        self.inbox.remove(i)
    }

    /// An error report that answered no request, if one has arrived.
    pub fn take_unsolicited_error(&mut self) -> Option<AgentMessage> {
        let i = self.inbox.iter().position(|m| {
            matches!(
                m,
                AgentMessage::Error {
                    request_id: None,
                    ..
                }
            )
        })?;
        self.inbox.remove(i)
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&mut self, make: impl FnOnce(RequestId) -> ServerMessage) -> AgentMessage {
        let id = self.request_id();
        self.send(&make(id)).await;
        self.wait_for(|m| m.request_id() == Some(id)).await
    }

    /// Keeps the data channels going until `done` holds for the session's
    /// client.
    pub async fn wait_client(&mut self, session: &SessionId, done: impl Fn(&DataClient) -> bool) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if self.sessions.get(session).is_some_and(&done) {
                return;
            }
            let m = match self.read_until(deadline).await {
                Some(m) => m,
                None => panic!(
                    "timed out; output so far: {:?}",
                    self.sessions.get(session).map(|c| c.text())
                ),
            };
            if let Some(other) = self.dispatch(m).await {
                self.inbox.push_back(other);
            }
        }
    }

    /// Waits until the session's output contains `needle`.
    pub async fn wait_output(&mut self, session: &SessionId, needle: &str) {
        self.wait_client(session, |c| c.text().contains(needle))
            .await;
    }

    pub async fn open(&mut self, session: &SessionId, cols: u16, rows: u16) {
        let session = session.clone();
        let reply = self
            .request(|request_id| ServerMessage::OpenSession {
                request_id,
                session_id: session,
                shell: Shell::Bash,
                cols,
                rows,
                env: BTreeMap::from([("AWS_REGION".to_owned(), "us-east-1".to_owned())]),
            })
            .await;
        assert!(
            matches!(reply, AgentMessage::SessionOpened { .. }),
            "{reply:?}"
        );
    }

    /// Attaches a client; a fresh attach starts a new client state.
    pub async fn attach(&mut self, session: &SessionId, mode: AttachMode) {
        match mode {
            AttachMode::Fresh => {
                self.sessions.insert(session.clone(), DataClient::new());
            }
            AttachMode::Resume => {
                let client = self.sessions.entry(session.clone()).or_default();
                client.discard = false;
                client.ack = true;
            }
        }
        let id = session.clone();
        let reply = self
            .request(|request_id| ServerMessage::AttachSession {
                request_id,
                session_id: id,
                mode,
            })
            .await;
        assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
        self.wait_client(session, |c| c.handshake_complete).await;
    }

    /// Opens a session and attaches a client to it.
    pub async fn open_attached(&mut self, session: &SessionId) {
        self.open(session, 80, 24).await;
        self.attach(session, AttachMode::Fresh).await;
    }

    pub async fn detach(&mut self, session: &SessionId) {
        if let Some(c) = self.sessions.get_mut(session) {
            c.discard = true;
        }
        self.send(&ServerMessage::DetachSession {
            session_id: session.clone(),
        })
        .await;
    }

    async fn input(&mut self, session: &SessionId, payload_type: PayloadType, payload: Vec<u8>) {
        let frame = self
            .sessions
            .get_mut(session)
            .unwrap()
            .input_frame(payload_type, payload);
        self.send(&ServerMessage::DataChannel {
            session_id: session.clone(),
            frame: frame.into(),
        })
        .await;
    }

    /// Types `text` as keystrokes.
    pub async fn type_text(&mut self, session: &SessionId, text: &str) {
        self.input(session, PayloadType::Output, text.as_bytes().to_vec())
            .await;
    }

    /// Resizes the client's terminal.
    pub async fn resize(&mut self, session: &SessionId, cols: u32, rows: u32) {
        let payload = serde_json::to_vec(&SizeData { cols, rows }).unwrap();
        self.input(session, PayloadType::Size, payload).await;
    }
}

/// One HTTP/1.1 exchange with the credentials endpoint: status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "PUT" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
