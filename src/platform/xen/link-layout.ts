// What a Xen link adds to chunk 0 (platform/common/link-layout.ts has the rest), in byte offsets
// from the chunk's start. Chunk 0 is granted by the initiator and its grant references travel
// once, through XenStore, at set-up; every later chunk's references travel through the *grant
// table* here, which the initiator fills before it sends GROW (XenStore per chunk would cost a
// transaction and a watch event each, and the GROW record has no room for a reference list).
//
//   0 …          the link: header, pending sets, control channel, listener table (common/link-layout.ts)
//   TAIL         the Xen header, written once by the initiator: magic, version, table entries
//   TAIL + 64    the initiator's liveness byte: 1 while it maps chunk 0; its kernel clears it
//                (gntalloc's unmap notification) when the mapping goes, however it goes
//   TAIL + 128   the acceptor's liveness byte (gntdev's unmap notification)
//   TABLE        the grant table: one u32 grant reference per 4 KiB page of ring chunks, in
//                region order (chunk 1's pages first); written only by the initiator
//
// The acceptor reads each GROW's references from the table — a copy, checked against the table's
// bounds — and never trusts them further than the hypervisor does: a reference that is not a
// grant of the peer's to us fails to map, and the link fails.

import { WASM_PAGE } from '../../ring/layout.js';
import { CHUNK0_BYTES, LINK, LISTENERS_BYTES } from '../common/link-layout.js';

export const XEN_PAGE = 4096;
/** Grant references per wasm page (what a GROW counts in). */
export const GRANTS_PER_WASM_PAGE = WASM_PAGE / XEN_PAGE;

export const XEN_LINK_MAGIC = 0x4e585758; // "XWXN" little-endian
export const XEN_LINK_VERSION = 1;

/** Where the Xen part starts: the first whole Xen page after the link's listener table. */
const TAIL = Math.ceil((LINK.LISTENERS + LISTENERS_BYTES) / XEN_PAGE) * XEN_PAGE;
/** Pages of grant table: 5 × 1024 references = 20 MiB of ring chunks, and chunk 0 stays 320 KiB
 *  (the wasm pages the link's own part needs). */
const TABLE_PAGES = 5;

export const XEN_LINK = {
  MAGIC: TAIL,
  VERSION: TAIL + 4,
  TABLE_ENTRIES: TAIL + 8,
  ALIVE_INITIATOR: TAIL + 64,
  ALIVE_ACCEPTOR: TAIL + 128,
  TABLE: TAIL + XEN_PAGE,
} as const;

export const TABLE_ENTRIES = (TABLE_PAGES * XEN_PAGE) / 4;
/** The most ring memory a Xen link can have: one table entry per page. */
export const XEN_MAX_LINK_BYTES = TABLE_ENTRIES * XEN_PAGE;
/** Bytes of a Xen link's chunk 0, all of them granted (80 pages). */
export const XEN_CHUNK0_BYTES = Math.max(CHUNK0_BYTES, Math.ceil((XEN_LINK.TABLE + TABLE_PAGES * XEN_PAGE) / WASM_PAGE) * WASM_PAGE);
export const XEN_CHUNK0_GRANTS = XEN_CHUNK0_BYTES / XEN_PAGE;
/** Wasm pages of chunk 0, where ring chunks start in the region. */
export const XEN_CHUNK0_PAGES = XEN_CHUNK0_BYTES / WASM_PAGE;
/** A ring chunk's size unless a connection needs more: 1 MiB = 256 grants (7 connections at the
 *  default 64 KiB rings, 28 at 16 KiB). */
export const XEN_CHUNK_PAGES = 16;

/** Writes the Xen header (the initiator, before chunk 0 is offered). */
export function initXenHeader(words: Int32Array, base: number): void {
  Atomics.store(words, (base + XEN_LINK.VERSION) >> 2, XEN_LINK_VERSION);
  Atomics.store(words, (base + XEN_LINK.TABLE_ENTRIES) >> 2, TABLE_ENTRIES);
  Atomics.store(words, (base + XEN_LINK.MAGIC) >> 2, XEN_LINK_MAGIC);
}

/** Why the Xen header at `base` is not one of this version, or null. */
export function checkXenHeader(words: Int32Array, base: number): string | null {
  const at = (offset: number) => Atomics.load(words, (base + offset) >> 2) >>> 0;
  if (at(XEN_LINK.MAGIC) !== XEN_LINK_MAGIC) return 'bad Xen link magic';
  if (at(XEN_LINK.VERSION) !== XEN_LINK_VERSION) return `Xen link version ${at(XEN_LINK.VERSION)}, expected ${XEN_LINK_VERSION}`;
  if (at(XEN_LINK.TABLE_ENTRIES) !== TABLE_ENTRIES) return `a grant table of ${at(XEN_LINK.TABLE_ENTRIES)} entries, expected ${TABLE_ENTRIES}`;
  return null;
}
