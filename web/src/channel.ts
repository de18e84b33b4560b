// The client end of the data channel (DESIGN §5, docs/gateway.md): the
// opening frame, the handshake, numbered input with retransmission,
// in-order output without duplicates, acknowledgements sent only once the
// terminal has rendered the output (end-to-end flow control: the agent
// stops reading the shell while too much is unacknowledged, so a flood
// never freezes the page and Ctrl-C still gets through), and resumption
// on a new socket with a new token, keeping the sequence numbers.

import {
  MessageType,
  PayloadType,
  acknowledgement,
  decode,
  encode,
  json,
  randomUuid,
  streamFrame,
  utf8,
  type Frame,
} from "./protocol";

export interface Endpoint {
  url: string;
  token: string;
}

export type ChannelState =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "reconnecting"; attempt: number; why: string }
  | { kind: "ended"; reason: string }
  | { kind: "replaced" };

export interface ChannelEvents {
  /** Terminal bytes, in order, once each; call `rendered` when shown. */
  output(data: Uint8Array, rendered: () => void): void;
  state(state: ChannelState): void;
}

/** Thrown by the resume callback when the session no longer exists. */
export class SessionGone extends Error {}

const CLIENT_VERSION = "seashell-console";
/** Largest keystroke message sent (the plugin sends at most 1024 bytes). */
const INPUT_CHUNK = 1024;
const MAX_BACKOFF_MS = 10_000;
/** Output messages held while an earlier one is missing. */
const REORDER_LIMIT = 2048;

interface Unacked {
  frame: Uint8Array<ArrayBuffer>;
  sentAt: number;
  retransmitted: boolean;
}

export class DataChannel {
  private ws: WebSocket | null = null;
  private nextSeq = 0;
  private readonly unacked = new Map<number, Unacked>();
  private expected = 0;
  private readonly reorder = new Map<number, Frame>();
  private handshakeDone = false;
  /** Keystrokes typed before the handshake completed. */
  private early: Uint8Array[] = [];
  private live = false;
  private paused = false;
  private size: { cols: number; rows: number } | null = null;
  private srtt = 0;
  private rttvar = 0;
  private rto = 1000;
  private attempt = 0;
  private stopped = false;
  private ended = false;
  private timer: number | undefined;
  private reconnectTimer: number | undefined;

  constructor(
    private readonly events: ChannelEvents,
    private readonly resume: () => Promise<Endpoint>,
  ) {
    this.timer = window.setInterval(() => this.retransmit(), 100);
  }

  /** Opens the first socket of a new attachment. */
  open(endpoint: Endpoint): void {
    this.events.state({ kind: "connecting" });
    this.connect(endpoint, false);
  }

  /** Types bytes into the shell. */
  send(data: Uint8Array): void {
    if (this.ended) return;
    if (!this.handshakeDone) {
      this.early.push(data);
      return;
    }
    for (let i = 0; i < data.length; i += INPUT_CHUNK) {
      this.sendInput(PayloadType.Output, data.subarray(i, i + INPUT_CHUNK));
    }
  }

  sendText(text: string): void {
    this.send(utf8(text));
  }

  /** The terminal's size; sent now and after every reconnection. */
  resize(cols: number, rows: number): void {
    if (this.size && this.size.cols === cols && this.size.rows === rows) return;
    this.size = { cols, rows };
    if (this.handshakeDone) this.sendSize();
  }

  /** Closes the socket for good (the shell keeps running). */
  close(): void {
    this.stopped = true;
    window.clearInterval(this.timer);
    window.clearTimeout(this.reconnectTimer);
    this.ws?.close(1000, "closed by the console");
    this.ws = null;
  }

  private connect(endpoint: Endpoint, resuming: boolean): void {
    const ws = new WebSocket(endpoint.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.live = false;
    let channelClosed: string | null = null;
    ws.onopen = () => {
      ws.send(
        JSON.stringify({
          MessageSchemaVersion: "1.0",
          RequestId: randomUuid(),
          TokenValue: endpoint.token,
          ClientId: randomUuid(),
          ClientVersion: CLIENT_VERSION,
        }),
      );
      if (resuming) this.becomeLive();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws || !(ev.data instanceof ArrayBuffer)) return;
      let frame: Frame;
      try {
        frame = decode(new Uint8Array(ev.data));
      } catch (e) {
        console.warn("data channel: undecodable frame", e);
        return;
      }
      if (frame.messageType === MessageType.ChannelClosed) {
        try {
          channelClosed = json<{ Output?: string }>(frame.payload).Output ?? "";
        } catch {
          channelClosed = "";
        }
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.live = false;
      if (this.stopped) return;
      if (channelClosed !== null) {
        this.finish(channelClosed || "The session ended.");
      } else if (ev.code === 1000 && ev.reason.startsWith("Another connection")) {
        this.stopped = true;
        window.clearInterval(this.timer);
        this.events.state({ kind: "replaced" });
      } else if (ev.code === 1000 && ev.reason.startsWith("The session ended")) {
        this.finish("The session ended.");
      } else {
        this.scheduleReconnect(ev.reason || `the connection was lost (${ev.code})`);
      }
    };
  }

  private finish(reason: string): void {
    this.ended = true;
    this.stopped = true;
    window.clearInterval(this.timer);
    this.events.state({ kind: "ended", reason });
  }

  private scheduleReconnect(why: string): void {
    this.attempt += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.attempt - 1, 6));
    this.events.state({ kind: "reconnecting", attempt: this.attempt, why });
    this.reconnectTimer = window.setTimeout(async () => {
      if (this.stopped) return;
      try {
        const endpoint = await this.resume();
        if (this.stopped) return;
        this.connect(endpoint, true);
      } catch (e) {
        if (e instanceof SessionGone) {
          this.finish(e.message || "The session is no longer running.");
        } else {
          this.scheduleReconnect(e instanceof Error ? e.message : String(e));
        }
      }
    }, delay);
  }

  private becomeLive(): void {
    this.live = true;
    this.attempt = 0;
    this.events.state({ kind: "connected" });
    // Everything not yet acknowledged, in order: the agent drops what it
    // already has.
    const now = performance.now();
    for (const seq of [...this.unacked.keys()].sort((a, b) => a - b)) {
      const u = this.unacked.get(seq);
      if (!u) continue;
      u.sentAt = now;
      u.retransmitted = true;
      this.transmit(u.frame);
    }
    if (this.handshakeDone && this.size) this.sendSize();
  }

  private handle(frame: Frame): void {
    switch (frame.messageType) {
      case MessageType.Output:
        this.receiveOutput(frame);
        break;
      case MessageType.Acknowledge:
        this.receiveAck(frame);
        break;
      case MessageType.PausePublication:
        this.paused = true;
        break;
      case MessageType.StartPublication:
        this.paused = false;
        break;
    }
  }

  private receiveOutput(frame: Frame): void {
    const seq = frame.sequenceNumber;
    if (seq < this.expected) {
      // Already delivered (a resend after a reconnection): acknowledged
      // again so the agent stops resending it, never shown twice.
      this.ack(frame);
      return;
    }
    if (seq > this.expected) {
      if (this.reorder.size < REORDER_LIMIT) this.reorder.set(seq, frame);
      return;
    }
    this.deliver(frame);
    let next = this.reorder.get(this.expected);
    while (next) {
      this.reorder.delete(this.expected);
      this.deliver(next);
      next = this.reorder.get(this.expected);
    }
  }

  private deliver(frame: Frame): void {
    this.expected = frame.sequenceNumber + 1;
    switch (frame.payloadType) {
      case PayloadType.Output:
        this.events.output(frame.payload, () => this.ack(frame));
        return;
      case PayloadType.HandshakeRequest:
        this.ack(frame);
        this.sendInput(
          PayloadType.HandshakeResponse,
          utf8(
            JSON.stringify({
              ClientVersion: CLIENT_VERSION,
              ProcessedClientActions: [
                { ActionType: "SessionType", ActionStatus: 1, ActionResult: null, Error: "" },
              ],
              Errors: [],
            }),
          ),
          true,
        );
        return;
      case PayloadType.HandshakeComplete:
        this.ack(frame);
        this.handshakeDone = true;
        this.becomeLive();
        for (const data of this.early.splice(0)) this.send(data);
        return;
      default:
        this.ack(frame);
    }
  }

  private ack(frame: Frame): void {
    this.transmit(encode(acknowledgement(frame)));
  }

  private receiveAck(frame: Frame): void {
    let seq: number;
    try {
      seq = json<{ AcknowledgedMessageSequenceNumber: number }>(frame.payload)
        .AcknowledgedMessageSequenceNumber;
    } catch {
      return;
    }
    const u = this.unacked.get(seq);
    if (!u) return;
    this.unacked.delete(seq);
    if (!u.retransmitted) {
      // RFC 6298's estimator, from samples of messages sent once.
      const sample = performance.now() - u.sentAt;
      if (this.srtt === 0) {
        this.srtt = sample;
        this.rttvar = sample / 2;
      } else {
        this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - sample);
        this.srtt = 0.875 * this.srtt + 0.125 * sample;
      }
      this.rto = Math.min(5000, Math.max(200, this.srtt + 4 * this.rttvar));
    }
  }

  private sendInput(payloadType: number, payload: Uint8Array, duringHandshake = false): void {
    const seq = this.nextSeq++;
    const frame = encode(streamFrame(seq, payloadType, payload));
    this.unacked.set(seq, { frame, sentAt: performance.now(), retransmitted: false });
    if (this.live || duringHandshake) this.transmit(frame);
  }

  private sendSize(): void {
    if (!this.size) return;
    this.sendInput(PayloadType.Size, utf8(JSON.stringify(this.size)));
  }

  private transmit(frame: Uint8Array<ArrayBuffer>): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && !this.paused) this.ws.send(frame);
  }

  private retransmit(): void {
    if (!this.live || this.paused) return;
    const now = performance.now();
    for (const u of this.unacked.values()) {
      if (now - u.sentAt >= this.rto) {
        u.sentAt = now;
        u.retransmitted = true;
        this.transmit(u.frame);
      }
    }
  }
}
