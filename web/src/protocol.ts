// The data-channel frame (DESIGN §5, docs/gateway.md): the AWS Session
// Manager `ClientMessage`, big-endian, a 116-byte header up to the payload
// length, then the payload. Mirrors crates/protocol/src/data_channel.

import { sha256 } from "@noble/hashes/sha2.js";

export const HEADER_LENGTH = 116;
export const PAYLOAD_OFFSET = HEADER_LENGTH + 4;

export const MessageType = {
  Input: "input_stream_data",
  Output: "output_stream_data",
  Acknowledge: "acknowledge",
  ChannelClosed: "channel_closed",
  StartPublication: "start_publication",
  PausePublication: "pause_publication",
} as const;

export const PayloadType = {
  Unspecified: 0,
  Output: 1,
  Error: 2,
  Size: 3,
  Parameter: 4,
  HandshakeRequest: 5,
  HandshakeResponse: 6,
  HandshakeComplete: 7,
  Flag: 10,
  StdErr: 11,
  ExitCode: 12,
} as const;

export interface Frame {
  messageType: string;
  schemaVersion: number;
  createdDate: number;
  sequenceNumber: number;
  flags: number;
  /** Hyphenated lower-case UUID. */
  messageId: string;
  payloadType: number;
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function randomUuid(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function uuidBytes(id: string): Uint8Array {
  const hex = id.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function uuidText(b: Uint8Array): string {
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function encode(f: Frame): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PAYLOAD_OFFSET + f.payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, HEADER_LENGTH);
  out.fill(0x20, 4, 36);
  out.set(encoder.encode(f.messageType), 4);
  v.setUint32(36, f.schemaVersion);
  v.setBigUint64(40, BigInt(f.createdDate));
  v.setBigInt64(48, BigInt(f.sequenceNumber));
  v.setBigUint64(56, BigInt(f.flags));
  // The plugin writes the UUID's low 8 bytes first, then the high 8.
  const id = uuidBytes(f.messageId);
  out.set(id.subarray(8), 64);
  out.set(id.subarray(0, 8), 72);
  out.set(sha256(f.payload), 80);
  v.setUint32(112, f.payloadType);
  v.setUint32(116, f.payload.length);
  out.set(f.payload, PAYLOAD_OFFSET);
  return out;
}

export function decode(bytes: Uint8Array): Frame {
  if (bytes.length < PAYLOAD_OFFSET) throw new Error(`frame of ${bytes.length} bytes is too short`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0) !== HEADER_LENGTH) throw new Error("bad header length");
  const messageType = decoder.decode(bytes.subarray(4, 36)).replace(/[\0\s]+$/g, "").replace(/^[\0\s]+/g, "");
  const length = v.getUint32(116);
  if (PAYLOAD_OFFSET + length !== bytes.length) throw new Error("bad payload length");
  const id = new Uint8Array(16);
  id.set(bytes.subarray(72, 80), 0);
  id.set(bytes.subarray(64, 72), 8);
  return {
    messageType,
    schemaVersion: v.getUint32(36),
    createdDate: Number(v.getBigUint64(40)),
    sequenceNumber: Number(v.getBigInt64(48)),
    flags: Number(v.getBigUint64(56)),
    messageId: uuidText(id),
    payloadType: v.getUint32(112),
    payload: bytes.slice(PAYLOAD_OFFSET),
  };
}

export function streamFrame(sequenceNumber: number, payloadType: number, payload: Uint8Array): Frame {
  return {
    messageType: MessageType.Input,
    schemaVersion: 1,
    createdDate: Date.now(),
    sequenceNumber,
    flags: 0,
    messageId: randomUuid(),
    payloadType,
    payload,
  };
}

/** The acknowledgement of `received`, shaped as the plugin shapes its own. */
export function acknowledgement(received: Frame): Frame {
  const content = {
    AcknowledgedMessageType: received.messageType,
    AcknowledgedMessageId: received.messageId,
    AcknowledgedMessageSequenceNumber: received.sequenceNumber,
    IsSequentialMessage: true,
  };
  return {
    messageType: MessageType.Acknowledge,
    schemaVersion: 1,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: 3,
    messageId: randomUuid(),
    payloadType: PayloadType.Unspecified,
    payload: encoder.encode(JSON.stringify(content)),
  };
}

export function json<T>(payload: Uint8Array): T {
  return JSON.parse(decoder.decode(payload)) as T;
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
