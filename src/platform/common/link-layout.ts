// The layout of a link's chunk 0 (docs/links.md), in byte offsets from the chunk's start. Written
// once by the initiator (linkInit), checked by the acceptor (checkLinkHeader); after that each
// side writes only its own doorbell word, the pending set it marks for the other, and the control
// channel's producer half it owns.
//
//   0      line 0: magic, version, max slots, control ring capacity (written once)
//   64     the initiator's doorbell word: 1 = "about to sleep: ring me", written by the initiator,
//          swapped to 0 by the acceptor when it rings
//   128    the acceptor's doorbell word, the other way round
//   4096   the initiator's pending set (marked by the acceptor): level 0, then level 1
//   …      the acceptor's pending set (marked by the initiator)
//   …      the control channel (slot 0): OPEN, ACCEPT, REFUSE, CLOSED, GROW, LIMIT, PORTS records
//   …      the acceptor's listeners: a u16 per port, the epoch of the listener the acceptor's
//          thread has open on it, or 0 (written by the acceptor, read by the initiator at each
//          connect: the kernel's "is anyone listening" at SYN time, without waking anybody)
//
// Chunk 0 holds nothing else: connections' channels live in later chunks.

import { channelByteLength, WASM_PAGE } from '../../ring/layout.js';

export const LINK_MAGIC = 0x4b4c5758; // "XWLK" little-endian
export const LINK_VERSION = 2;

/** Slots per link, the control channel's slot 0 included. */
export const MAX_SLOTS = 1 << 17;
/** Level 1 of a pending set: one bit per slot. Level 0: one bit per level-1 word. */
export const L1_WORDS = MAX_SLOTS / 32;
export const L0_WORDS = L1_WORDS / 32;
export const PENDING_BYTES = (L0_WORDS + L1_WORDS) * 4;

/** Each control record is 32 bytes; the control rings hold 2048 of them each way. */
export const CONTROL_CAPACITY = 64 * 1024;

export const LINK = {
  MAGIC: 0,
  VERSION: 4,
  MAX_SLOTS: 8,
  CONTROL_CAPACITY: 12,
  DOORBELL_INITIATOR: 64,
  DOORBELL_ACCEPTOR: 128,
  PENDING_INITIATOR: 4096,
  PENDING_ACCEPTOR: 4096 + PENDING_BYTES,
  CONTROL: 4096 + 2 * PENDING_BYTES,
  LISTENERS: Math.ceil((4096 + 2 * PENDING_BYTES + channelByteLength(CONTROL_CAPACITY, CONTROL_CAPACITY)) / 4096) * 4096,
} as const;

/** The listener table: one u16 per port. */
export const LISTENERS_BYTES = 65536 * 2;

/** Bytes of chunk 0, in whole wasm pages. */
export const CHUNK0_BYTES = Math.ceil((LINK.LISTENERS + LISTENERS_BYTES) / WASM_PAGE) * WASM_PAGE;

export type LinkSide = 'initiator' | 'acceptor';

/** Writes a fresh header (the initiator, before anyone else can see the chunk). */
export function initLinkHeader(words: Int32Array, base: number): void {
  const at = (offset: number) => (base + offset) >>> 2;
  Atomics.store(words, at(LINK.VERSION), LINK_VERSION);
  Atomics.store(words, at(LINK.MAX_SLOTS), MAX_SLOTS);
  Atomics.store(words, at(LINK.CONTROL_CAPACITY), CONTROL_CAPACITY);
  Atomics.store(words, at(LINK.MAGIC), LINK_MAGIC); // last: the header is valid once its magic is there
}

/** Why the header at `base` is not a link of this version, or null. */
export function checkLinkHeader(words: Int32Array, base: number): string | null {
  const at = (offset: number) => Atomics.load(words, (base + offset) >>> 2) >>> 0;
  if (at(LINK.MAGIC) !== LINK_MAGIC) return 'bad magic';
  if (at(LINK.VERSION) !== LINK_VERSION) return `link version ${at(LINK.VERSION)}, expected ${LINK_VERSION}`;
  if (at(LINK.MAX_SLOTS) !== MAX_SLOTS) return `${at(LINK.MAX_SLOTS)} slots, expected ${MAX_SLOTS}`;
  if (at(LINK.CONTROL_CAPACITY) !== CONTROL_CAPACITY) return `control capacity ${at(LINK.CONTROL_CAPACITY)}, expected ${CONTROL_CAPACITY}`;
  return null;
}
