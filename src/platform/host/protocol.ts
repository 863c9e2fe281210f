// The set-up of a link, spoken over a host control socket (AF_UNIX, SOCK_SEQPACKET, so each message
// arrives whole). Two messages, then the socket stays open for the link's life as its lifeline:
// either side learns of the other's death at once (even SIGKILL) as the socket closing.
//
//   client -> server  LINK         version, its pid, chunk 0's size,  + fds: the region (a memfd,
//                                  where it lives (network namespace,
//                                  container name: for xway stat)
//                                                                        chunk 0 laid out), its eventfd
//   server -> client  LINK_ACCEPT                                     + fds: the server's eventfd
//              or     REFUSE       a reason code and text
//
// Connections are then opened through the link itself (platform/common/link.ts). A client in the
// server's own process (another worker thread, or the same thread) asks for a threads link instead,
// so that its data path is Atomics on one shared memory with no descriptor and no system call:
//
//   client -> server  LINK_THREADS         pid, thread id, a 16-byte token
//   server -> client  LINK_ACCEPT_THREADS  (the memory goes by BroadcastChannel, tagged with the
//                                           token: see same-process.ts)
//
// Every field is checked against the limits of the side that reads it; anything malformed is a
// ProtocolError with a reason, and the caller closes the socket and whatever it received.

import { XwayError } from '../../errors.js';

export const PROTOCOL_MAGIC = 0x59415758; // "XWAY"
export const PROTOCOL_VERSION = 3;

export enum MessageType {
  Link = 1,
  LinkAccept = 2,
  Refuse = 3,
  LinkThreads = 5,
  LinkAcceptThreads = 6,
}

export type RefuseReason = 'version' | 'capacity' | 'busy' | 'malformed' | 'internal' | 'denied';
const REASONS: RefuseReason[] = ['version', 'capacity', 'busy', 'malformed', 'internal', 'denied'];

/** Where a client lives, as it says (for observers only: nothing is decided on it). */
export interface PeerPlace { netns: string; container: string }
export interface LinkHello { type: MessageType.Link; pid: number; chunk0: number; place: PeerPlace }
export interface LinkAccept { type: MessageType.LinkAccept }
export interface Refuse { type: MessageType.Refuse; reason: RefuseReason; text: string }
export interface LinkThreads { type: MessageType.LinkThreads; pid: number; threadId: number; token: string }
export interface LinkAcceptThreads { type: MessageType.LinkAcceptThreads }
export type Message = LinkHello | LinkAccept | Refuse | LinkThreads | LinkAcceptThreads;

const TOKEN_BYTES = 16;

/** Descriptors each message must carry. */
export const FDS_PER_MESSAGE: Record<MessageType, number> = {
  [MessageType.Link]: 2,
  [MessageType.LinkAccept]: 1,
  [MessageType.Refuse]: 0,
  [MessageType.LinkThreads]: 0,
  [MessageType.LinkAcceptThreads]: 0,
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
  [MessageType.Link]: 8, // pid u32, chunk 0 bytes u32
  [MessageType.LinkAccept]: 0,
  [MessageType.Refuse]: 4, // reason u16, text length u16, then text
  [MessageType.LinkThreads]: 8 + TOKEN_BYTES,
  [MessageType.LinkAcceptThreads]: 0,
};
const MAX_REFUSE_TEXT = 200;
const MAX_PLACE_TEXT = 64;

function placeBytes(place: PeerPlace): Uint8Array {
  const netns = Buffer.from(place.netns.slice(0, 20), 'latin1');
  const container = Buffer.from(place.container, 'utf8').subarray(0, MAX_PLACE_TEXT);
  return Buffer.concat([Buffer.from([netns.length, container.length]), netns, container]);
}

function readPlace(bytes: Uint8Array, at: number, malformed: (why: string) => never): PeerPlace {
  if (bytes.length < at + 2) malformed('no place');
  const nl = bytes[at], cl = bytes[at + 1];
  if (nl > 20 || cl > MAX_PLACE_TEXT || bytes.length !== at + 2 + nl + cl) malformed('place lengths');
  const netns = Buffer.from(bytes.subarray(at + 2, at + 2 + nl)).toString('latin1');
  const container = Buffer.from(bytes.subarray(at + 2 + nl, at + 2 + nl + cl)).toString('utf8');
  if (!/^[0-9]*$/.test(netns) || /[\0-\x1f]/.test(container)) malformed('place characters');
  return { netns, container };
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
    case MessageType.Link: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.pid, true);
      v.setUint32(12, message.chunk0, true);
      const place = placeBytes(message.place);
      const out = new Uint8Array(v.byteLength + place.length);
      out.set(new Uint8Array(v.buffer), 0);
      out.set(place, v.byteLength);
      return out;
    }
    case MessageType.LinkThreads: {
      const v = header(message.type, BODY[message.type]);
      v.setUint32(8, message.pid, true);
      v.setUint32(12, message.threadId, true);
      const token = Buffer.from(message.token, 'hex');
      if (token.length !== TOKEN_BYTES) throw new ProtocolError('malformed', 'a threads-link token is 16 bytes');
      new Uint8Array(v.buffer).set(token, 16);
      return new Uint8Array(v.buffer);
    }
    case MessageType.LinkAccept:
    case MessageType.LinkAcceptThreads:
      return new Uint8Array(header(message.type, 0).buffer);
    case MessageType.Refuse: {
      const text = new TextEncoder().encode(message.text).subarray(0, MAX_REFUSE_TEXT);
      const v = header(message.type, BODY[message.type] + text.length);
      v.setUint16(8, REASONS.indexOf(message.reason), true);
      v.setUint16(10, text.length, true);
      new Uint8Array(v.buffer).set(text, HEADER + 4);
      return new Uint8Array(v.buffer);
    }
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
  if (type === MessageType.Refuse || type === MessageType.Link ? body < BODY[type] : body !== BODY[type]) malformed(`type ${type} with ${body} body bytes`);
  if (fdCount !== FDS_PER_MESSAGE[type]) malformed(`type ${type} carries ${fdCount} descriptors, expected ${FDS_PER_MESSAGE[type]}`);
  switch (type) {
    case MessageType.Link:
      return { type, pid: v.getUint32(8, true), chunk0: v.getUint32(12, true), place: readPlace(bytes, HEADER + BODY[type], malformed) };
    case MessageType.LinkThreads:
      return { type, pid: v.getUint32(8, true), threadId: v.getUint32(12, true), token: Buffer.from(bytes.subarray(16, 16 + TOKEN_BYTES)).toString('hex') };
    case MessageType.LinkAccept:
    case MessageType.LinkAcceptThreads:
      return { type };
    case MessageType.Refuse: {
      const reason = REASONS[v.getUint16(8, true)] ?? 'internal';
      const length = v.getUint16(10, true);
      if (length !== body - 4 || length > MAX_REFUSE_TEXT) malformed('refusal text length');
      return { type, reason, text: new TextDecoder().decode(bytes.subarray(HEADER + 4)) };
    }
  }
  return malformed('unreachable');
}
