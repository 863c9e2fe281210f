// The connection set-up protocol spoken over a host control socket (AF_UNIX, SOCK_SEQPACKET, so
// each message arrives whole). Three messages, then the socket stays open for the channel's life
// so that either side learns of the other's death at once:
//
//   client -> server  HELLO   version, the ring capacities it asks for, its pid
//   server -> client  ACCEPT  the capacities granted   + fds: channel segment, server's event fd
//              or     REFUSE  a reason code and text
//   client -> server  READY                            + fds: client's event fd
//
// A client in the server's own process (another worker thread, or the same thread) asks for a
// thread channel instead, so that its data path is Atomics on one shared memory, with no
// descriptor and no system call:
//
//   client -> server  HELLO_THREADS   capacities, pid, thread id, a 16-byte token
//   server -> client  ACCEPT_THREADS  capacities     (the memory itself goes by BroadcastChannel,
//                                                     tagged with the token: see same-process.ts)
//
// and the control socket stays open as the channel's lifeline all the same.
//
// Every field is checked against the limits of the side that reads it; anything malformed is a
// ProtocolError with a reason, and the caller closes the socket and whatever it received.

import { XwayError } from '../../errors.js';

export const PROTOCOL_MAGIC = 0x59415758; // "XWAY"
export const PROTOCOL_VERSION = 1;

export enum MessageType {
  Hello = 1,
  Accept = 2,
  Refuse = 3,
  Ready = 4,
  HelloThreads = 5,
  AcceptThreads = 6,
}

export type RefuseReason = 'version' | 'capacity' | 'busy' | 'malformed' | 'internal';
const REASONS: RefuseReason[] = ['version', 'capacity', 'busy', 'malformed', 'internal'];

export interface Hello { type: MessageType.Hello; capacityA: number; capacityB: number; pid: number }
export interface Accept { type: MessageType.Accept; capacityA: number; capacityB: number }
export interface Refuse { type: MessageType.Refuse; reason: RefuseReason; text: string }
export interface Ready { type: MessageType.Ready }
export interface HelloThreads { type: MessageType.HelloThreads; capacityA: number; capacityB: number; pid: number; threadId: number; token: string }
export interface AcceptThreads { type: MessageType.AcceptThreads; capacityA: number; capacityB: number }
export type Message = Hello | Accept | Refuse | Ready | HelloThreads | AcceptThreads;

const TOKEN_BYTES = 16;

/** Descriptors each message must carry. */
export const FDS_PER_MESSAGE: Record<MessageType, number> = {
  [MessageType.Hello]: 0,
  [MessageType.Accept]: 2,
  [MessageType.Refuse]: 0,
  [MessageType.Ready]: 1,
  [MessageType.HelloThreads]: 0,
  [MessageType.AcceptThreads]: 0,
};

export class ProtocolError extends XwayError {
  readonly reason: RefuseReason;
  constructor(reason: RefuseReason, message: string) {
    super('ERR_XWAY_PROTOCOL', message);
    this.reason = reason;
  }
}

const HEADER = 8; // magic u32, version u16, type u8, reserved u8
const BODY: Record<MessageType, number> = {
  [MessageType.Hello]: 12,
  [MessageType.Accept]: 8,
  [MessageType.Refuse]: 4, // reason u16, text length u16, then text
  [MessageType.Ready]: 0,
  [MessageType.HelloThreads]: 16 + TOKEN_BYTES,
  [MessageType.AcceptThreads]: 8,
};
const MAX_REFUSE_TEXT = 200;

function header(type: MessageType, body: number): DataView {
  const view = new DataView(new ArrayBuffer(HEADER + body));
  view.setUint32(0, PROTOCOL_MAGIC, true);
  view.setUint16(4, PROTOCOL_VERSION, true);
  view.setUint8(6, type);
  return view;
}

export function encode(message: Message): Uint8Array {
  switch (message.type) {
    case MessageType.Hello: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.capacityA, true);
      v.setUint32(12, message.capacityB, true);
      v.setUint32(16, message.pid, true);
      return new Uint8Array(v.buffer);
    }
    case MessageType.HelloThreads: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.capacityA, true);
      v.setUint32(12, message.capacityB, true);
      v.setUint32(16, message.pid, true);
      v.setUint32(20, message.threadId, true);
      const token = Buffer.from(message.token, 'hex');
      if (token.length !== TOKEN_BYTES) throw new ProtocolError('malformed', 'a thread-channel token is 16 bytes');
      new Uint8Array(v.buffer).set(token, 24);
      return new Uint8Array(v.buffer);
    }
    case MessageType.Accept:
    case MessageType.AcceptThreads: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.capacityA, true);
      v.setUint32(12, message.capacityB, true);
      return new Uint8Array(v.buffer);
    }
    case MessageType.Refuse: {
      const text = new TextEncoder().encode(message.text).subarray(0, MAX_REFUSE_TEXT);
      const v = header(message.type, BODY[message.type] + text.length);
      v.setUint16(8, REASONS.indexOf(message.reason), true);
      v.setUint16(10, text.length, true);
      new Uint8Array(v.buffer).set(text, HEADER + 4);
      return new Uint8Array(v.buffer);
    }
    case MessageType.Ready:
      return new Uint8Array(header(message.type, 0).buffer);
  }
}

/** Parses one message, checking its shape (not yet its values against limits). */
export function decode(bytes: Uint8Array, fdCount: number): Message {
  const malformed = (why: string): never => { throw new ProtocolError('malformed', `malformed control message: ${why}`); };
  if (bytes.length < HEADER) malformed(`${bytes.length} bytes is shorter than a header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== PROTOCOL_MAGIC) malformed('bad magic');
  const version = v.getUint16(4, true);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError('version', `protocol version ${version} is not supported (this side speaks ${PROTOCOL_VERSION})`);
  }
  const type = v.getUint8(6) as MessageType;
  if (!(type in BODY)) malformed(`unknown message type ${type}`);
  const body = bytes.length - HEADER;
  if (type === MessageType.Refuse ? body < BODY[type] : body !== BODY[type]) malformed(`type ${type} with ${body} body bytes`);
  if (fdCount !== FDS_PER_MESSAGE[type]) malformed(`type ${type} carries ${fdCount} descriptors, expected ${FDS_PER_MESSAGE[type]}`);
  switch (type) {
    case MessageType.Hello:
      return { type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true), pid: v.getUint32(16, true) };
    case MessageType.HelloThreads:
      return {
        type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true), pid: v.getUint32(16, true),
        threadId: v.getUint32(20, true), token: Buffer.from(bytes.subarray(24, 24 + TOKEN_BYTES)).toString('hex'),
      };
    case MessageType.Accept:
    case MessageType.AcceptThreads:
      return { type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true) };
    case MessageType.Refuse: {
      const reason = REASONS[v.getUint16(8, true)] ?? 'internal';
      const length = v.getUint16(10, true);
      if (length !== body - 4 || length > MAX_REFUSE_TEXT) malformed('refusal text length');
      return { type, reason, text: new TextDecoder().decode(bytes.subarray(HEADER + 4)) };
    }
    case MessageType.Ready:
      return { type };
  }
  return malformed('unreachable');
}
