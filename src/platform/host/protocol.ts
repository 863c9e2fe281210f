// The connection set-up protocol spoken over a host control socket (AF_UNIX, SOCK_SEQPACKET, so
// each message arrives whole). Three messages, then the socket stays open for the channel's life
// so that either side learns of the other's death at once:
//
//   client -> server  HELLO   version, the ring capacities it asks for, its pid, and the route:
//                             the address it connects to and the one it comes from
//   server -> client  ACCEPT  the capacities granted, the connection's ephemeral port
//                                                      + fds: channel segment, server's event fd
//              or     REFUSE  a reason code and text
//   client -> server  READY                            + fds: client's event fd
//
// A client in the server's own process (another worker thread, or the same thread) asks for a
// thread channel instead, so that its data path is Atomics on one shared memory, with no
// descriptor and no system call:
//
//   client -> server  HELLO_THREADS   capacities, pid, thread id, a 16-byte token, the route
//   server -> client  ACCEPT_THREADS  capacities, port (the memory itself goes by BroadcastChannel,
//                                                     tagged with the token: see same-process.ts)
//
// and the control socket stays open as the channel's lifeline all the same.
//
// Every field is checked against the limits of the side that reads it; anything malformed is a
// ProtocolError with a reason, and the caller closes the socket and whatever it received.

import net from 'node:net';
import { XwayError } from '../../errors.js';
import type { Route } from '../../socket/identity.js';

export const PROTOCOL_MAGIC = 0x59415758; // "XWAY"
export const PROTOCOL_VERSION = 2;

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

export interface Hello { type: MessageType.Hello; capacityA: number; capacityB: number; pid: number; route: Route }
export interface Accept { type: MessageType.Accept; capacityA: number; capacityB: number; port: number }
export interface Refuse { type: MessageType.Refuse; reason: RefuseReason; text: string }
export interface Ready { type: MessageType.Ready }
export interface HelloThreads { type: MessageType.HelloThreads; capacityA: number; capacityB: number; pid: number; threadId: number; token: string; route: Route }
export interface AcceptThreads { type: MessageType.AcceptThreads; capacityA: number; capacityB: number; port: number }
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
/** Fixed part of each body; HELLOs end with a route (two length-prefixed addresses), a REFUSE
 *  with its text. */
const BODY: Record<MessageType, number> = {
  [MessageType.Hello]: 12,
  [MessageType.Accept]: 12, // capacities, port u16, reserved u16
  [MessageType.Refuse]: 4, // reason u16, text length u16, then text
  [MessageType.Ready]: 0,
  [MessageType.HelloThreads]: 16 + TOKEN_BYTES,
  [MessageType.AcceptThreads]: 12,
};
const VARIABLE = new Set([MessageType.Hello, MessageType.HelloThreads, MessageType.Refuse]);
const MAX_REFUSE_TEXT = 200;
/** An IP address in text: 45 characters at most ('ffff:…:255.255.255.255'). */
const MAX_ADDRESS = 45;

function routeBytes(route: Route): Uint8Array {
  const target = Buffer.from(route.target, 'latin1');
  const source = Buffer.from(route.source, 'latin1');
  if (!net.isIP(route.target) || !net.isIP(route.source)) throw new ProtocolError('malformed', 'a route is two IP addresses');
  return Buffer.concat([Buffer.from([target.length, source.length]), target, source]);
}

function withRoute(fixed: DataView, route: Route): Uint8Array {
  const tail = routeBytes(route);
  const out = new Uint8Array(fixed.byteLength + tail.length);
  out.set(new Uint8Array(fixed.buffer), 0);
  out.set(tail, fixed.byteLength);
  return out;
}

function readRoute(bytes: Uint8Array, at: number, malformed: (why: string) => never): Route {
  if (bytes.length < at + 2) malformed('no route');
  const tl = bytes[at], sl = bytes[at + 1];
  if (tl > MAX_ADDRESS || sl > MAX_ADDRESS || bytes.length !== at + 2 + tl + sl) malformed('route lengths');
  const text = (from: number, n: number) => Buffer.from(bytes.subarray(from, from + n)).toString('latin1');
  const route = { target: text(at + 2, tl), source: text(at + 2 + tl, sl) };
  if (!net.isIP(route.target) || !net.isIP(route.source)) malformed('a route address is not an IP address');
  return route;
}

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
      return withRoute(v, message.route);
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
      return withRoute(v, message.route);
    }
    case MessageType.Accept:
    case MessageType.AcceptThreads: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.capacityA, true);
      v.setUint32(12, message.capacityB, true);
      v.setUint16(16, message.port, true);
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
  if (VARIABLE.has(type) ? body < BODY[type] : body !== BODY[type]) malformed(`type ${type} with ${body} body bytes`);
  if (fdCount !== FDS_PER_MESSAGE[type]) malformed(`type ${type} carries ${fdCount} descriptors, expected ${FDS_PER_MESSAGE[type]}`);
  switch (type) {
    case MessageType.Hello:
      return {
        type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true), pid: v.getUint32(16, true),
        route: readRoute(bytes, HEADER + BODY[type], malformed),
      };
    case MessageType.HelloThreads:
      return {
        type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true), pid: v.getUint32(16, true),
        threadId: v.getUint32(20, true), token: Buffer.from(bytes.subarray(24, 24 + TOKEN_BYTES)).toString('hex'),
        route: readRoute(bytes, HEADER + BODY[type], malformed),
      };
    case MessageType.Accept:
    case MessageType.AcceptThreads: {
      const port = v.getUint16(16, true);
      if (port === 0) malformed('port 0');
      return { type, capacityA: v.getUint32(8, true), capacityB: v.getUint32(12, true), port };
    }
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
