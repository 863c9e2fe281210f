// A link between threads of two Xen domains (docs/xen.md, "Links"): the region is grant pages the
// initiator (the client's domain) shares with gntalloc and the acceptor maps with gntdev, a chunk
// at a time, each chunk mapped at a slot of this thread's region pool (MAP_FIXED, as host chunks
// are); chunk 1's and later chunks' grant references travel in chunk 0's grant table
// (link-layout.ts). The doorbell is one interdomain event channel; the lifeline is the peer's
// liveness byte in chunk 0 (cleared by its kernel when its mapping goes: its process ended) and
// one XenStore watch on the peer domain (gone: the domain was destroyed).

import type { Channel } from '../../ring/channel.js';
import { WASM_PAGE } from '../../ring/layout.js';
import { sharedBuffer } from '../../ring/memory.js';
import { regionPool, type Placement } from '../common/region-pool.js';
import { LinkError, LinkLimitError, roomPages, type ChunkPlace, type Link, type LinkChannelEnd, type LinkPlatform } from '../common/link.js';
import type { LinkSide } from '../common/link-layout.js';
import { atNextRead } from '../host/loop-phases.js';
import { XenChannelEnd } from './channel-end.js';
import { watchDomain } from './domain-watch.js';
import { bindInterdomain, bindUnbound, holdLoop, notifyPort, unbindPort } from './events.js';
import { gntallocLimit } from './limits.js';
import {
  checkXenHeader, GRANTS_PER_WASM_PAGE, initXenHeader, TABLE_ENTRIES, XEN_CHUNK0_BYTES, XEN_CHUNK0_GRANTS, XEN_CHUNK0_PAGES,
  XEN_CHUNK_PAGES, XEN_LINK, XEN_PAGE,
} from './link-layout.js';
import { xenAddon } from './native.js';
import { held } from './resources.js';

interface Mapped extends Placement {
  bytes: number;
  /** Where the chunk is in the region, in wasm pages. */
  pageOffset: number;
  /** Granted (initiator) or mapped (acceptor). */
  granted: boolean;
}

/** Errors of gntalloc/gntdev that mean "out of budget", not "bad reference". */
const BUDGET = new Set(['ENOSPC', 'ENOMEM', 'EMFILE', 'ENFILE']);

export class XenLinkPlatform implements LinkPlatform {
  readonly name = 'xen' as const;
  readonly peer: { domid: number };
  readonly side: LinkSide;
  readonly chunk0: ChunkPlace;
  /** Our event port, connected to the peer's (one interdomain channel per link). */
  readonly port: number;
  /** Chunk 0's grant references (the initiator's, for its XenStore offer). */
  readonly chunk0Grefs: readonly number[];
  readonly #maxBytes: number;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #mapped: Mapped[] = [];
  /** The region's end, in wasm pages, as far as this side knows; and table entries used. */
  #regionPages = XEN_CHUNK0_PAGES;
  #tableUsed = 0;
  #link: Link | null = null;
  #refd = false;
  #closed = false;
  /** Whether the peer's liveness byte has been seen set (before that, 0 means "not yet"). */
  #peerSeen = false;
  #unwatch: (() => void) | null = null;

  private constructor(side: LinkSide, domid: number, chunk0: Mapped, port: number, grefs: readonly number[], maxBytes: number) {
    this.side = side;
    this.peer = { domid };
    this.chunk0 = chunk0;
    this.port = port;
    this.chunk0Grefs = grefs;
    this.#maxBytes = maxBytes;
    this.#mapped.push(chunk0);
    this.#words = new Int32Array(sharedBuffer(chunk0.memory));
    this.#bytes = new Uint8Array(sharedBuffer(chunk0.memory));
  }

  /** The initiator's side: chunk 0 shared with domain `domid`, an unbound port for it to bind. */
  static initiate(domid: number, maxBytes: number): XenLinkPlatform {
    const native = xenAddon();
    const pool = regionPool();
    const place = pool.allocate(XEN_CHUNK0_BYTES);
    let port = -1;
    let self: XenLinkPlatform | undefined;
    try {
      port = bindUnbound(domid, () => self?.onEvent());
      // The unmap notification: our kernel clears our liveness byte and signals the peer when this
      // mapping goes (close, crash, kill, thread torn down).
      const grefs = native.xenGrantShare(pool.view(place.memory), place.offset, XEN_CHUNK0_BYTES, domid, XEN_LINK.ALIVE_INITIATOR, port);
      held.grantedPages += XEN_CHUNK0_GRANTS;
      self = new XenLinkPlatform('initiator', domid, { ...place, bytes: XEN_CHUNK0_BYTES, pageOffset: 0, granted: true }, port, grefs, maxBytes);
    } catch (err) {
      if (port >= 0) unbindPort(port);
      pool.release(place, XEN_CHUNK0_BYTES);
      throw budgetOr(err, 'chunk 0 cannot be shared');
    }
    initXenHeader(self.#words, place.offset);
    Atomics.store(self.#bytes, place.offset + XEN_LINK.ALIVE_INITIATOR, 1);
    held.links++;
    return self;
  }

  /** The acceptor's side: the initiator's chunk 0 (`grefs`, checked by the caller for count)
   *  mapped, our port bound to its `remotePort`, the Xen header and its liveness byte checked. */
  static accept(domid: number, grefs: readonly number[], remotePort: number, maxBytes: number): XenLinkPlatform {
    const native = xenAddon();
    const pool = regionPool();
    if (grefs.length !== XEN_CHUNK0_GRANTS) throw new LinkError(`chunk 0 of ${grefs.length} pages, expected ${XEN_CHUNK0_GRANTS}`);
    const place = pool.allocate(XEN_CHUNK0_BYTES);
    let port = -1;
    let mapped = false;
    let self: XenLinkPlatform | undefined;
    try {
      port = bindInterdomain(domid, remotePort, () => self?.onEvent());
      native.xenGrantMap(pool.view(place.memory), place.offset, XEN_CHUNK0_BYTES, domid, [...grefs], XEN_LINK.ALIVE_ACCEPTOR, port);
      mapped = true;
      held.mappedPages += XEN_CHUNK0_GRANTS;
      self = new XenLinkPlatform('acceptor', domid, { ...place, bytes: XEN_CHUNK0_BYTES, pageOffset: 0, granted: false }, port, [], maxBytes);
      const bad = checkXenHeader(self.#words, place.offset);
      if (bad) throw new LinkError(`not a Xen link: ${bad}`);
      if (Atomics.load(self.#bytes, place.offset + XEN_LINK.ALIVE_INITIATOR) !== 1) throw new LinkError('the client does not hold the link it offered');
    } catch (err) {
      if (mapped) {
        native.segmentUnmap(pool.view(place.memory), place.offset, XEN_CHUNK0_BYTES);
        held.mappedPages -= XEN_CHUNK0_GRANTS;
      }
      if (port >= 0) unbindPort(port);
      pool.release(place, XEN_CHUNK0_BYTES);
      throw err;
    }
    Atomics.store(self.#bytes, place.offset + XEN_LINK.ALIVE_ACCEPTOR, 1);
    self.#peerSeen = true;
    held.links++;
    return self;
  }

  /** The link these resources serve: its doorbell and its loss go there. */
  attach(link: Link): void {
    this.#link = link;
  }

  /** Set-up is done: the peer holds its side. From now on a cleared liveness byte is its end, and
   *  its domain is watched. */
  established(): void {
    if (this.#closed) return;
    if (this.peerAlive) this.#peerSeen = true;
    this.#unwatch = watchDomain(this.peer.domid, (reason) => this.#link?.lost(reason, 'vanished'));
  }

  /** Whether the peer's liveness byte is set. */
  get peerAlive(): boolean {
    const at = this.chunk0.offset + (this.side === 'initiator' ? XEN_LINK.ALIVE_ACCEPTOR : XEN_LINK.ALIVE_INITIATOR);
    return Atomics.load(this.#bytes, at) === 1;
  }

  /** Our port fired: the peer rang, or its mapping went (its liveness byte then reads 0). */
  onEvent(): void {
    if (this.#closed || !this.#link) return;
    if (this.#peerSeen && !this.peerAlive) {
      this.#link.lost('the peer unmapped the link (its process ended or closed the link)');
      return;
    }
    this.#link.doorbell();
  }

  createEnd(link: Link, slot: number, generation: number, channel: Channel, chunk: number, chunkOffset: number): LinkChannelEnd {
    return new XenChannelEnd(link, slot, generation, channel, chunk, chunkOffset);
  }

  addChunk(_index: number, want: number, minPages: number): { place: ChunkPlace; pageOffset: number; pages: number } {
    const room = Math.min(roomPages(this.#maxBytes, this.#regionPages, XEN_CHUNK0_PAGES), (TABLE_ENTRIES - this.#tableUsed) / GRANTS_PER_WASM_PAGE);
    const pages = Math.min(want, Math.max(minPages, XEN_CHUNK_PAGES), Math.floor(room));
    if (pages < minPages) throw new LinkLimitError(`the Xen link's ring memory would pass its limit of ${this.#maxBytes} bytes`);
    const bytes = pages * WASM_PAGE;
    const pool = regionPool();
    const place = pool.allocate(bytes);
    let grefs: number[];
    try {
      grefs = xenAddon().xenGrantShare(pool.view(place.memory), place.offset, bytes, this.peer.domid, -1, -1);
    } catch (err) {
      pool.release(place, bytes);
      throw budgetOr(err, `a chunk of ${bytes / XEN_PAGE} pages cannot be shared`);
    }
    held.grantedPages += grefs.length;
    // The references first, then (after we return) the GROW record: the control ring's commit is
    // a release store, so the acceptor that reads the record reads these too.
    const table = (this.chunk0.offset + XEN_LINK.TABLE) >> 2;
    for (let i = 0; i < grefs.length; i++) Atomics.store(this.#words, table + this.#tableUsed + i, grefs[i] | 0);
    this.#tableUsed += grefs.length;
    const pageOffset = this.#regionPages;
    this.#regionPages += pages;
    const chunk: Mapped = { ...place, bytes, pageOffset, granted: true };
    this.#mapped.push(chunk);
    return { place: chunk, pageOffset, pages };
  }

  mapChunk(index: number, pageOffset: number, pages: number): ChunkPlace {
    // Chunks follow each other in the region, and each one's references follow the last one's in
    // the table; anything else is not what we agreed.
    if (pageOffset !== this.#regionPages) throw new LinkError(`chunk at page ${pageOffset}, expected ${this.#regionPages}`);
    if (pages > roomPages(this.#maxBytes, this.#regionPages, XEN_CHUNK0_PAGES)) {
      throw new LinkLimitError(`the peer's region would pass this side's limit of ${this.#maxBytes} bytes`);
    }
    const first = (pageOffset - XEN_CHUNK0_PAGES) * GRANTS_PER_WASM_PAGE;
    const count = pages * GRANTS_PER_WASM_PAGE;
    if (first + count > TABLE_ENTRIES) throw new LinkError(`chunk ${index} of ${pages} pages passes the grant table (${TABLE_ENTRIES} references)`);
    // A copy: the peer may rewrite the table while we map.
    const table = (this.chunk0.offset + XEN_LINK.TABLE) >> 2;
    const grefs = Array.from({ length: count }, (_, i) => Atomics.load(this.#words, table + first + i) >>> 0);
    const bytes = pages * WASM_PAGE;
    const pool = regionPool();
    const place = pool.allocate(bytes);
    try {
      xenAddon().xenGrantMap(pool.view(place.memory), place.offset, bytes, this.peer.domid, grefs, -1, -1);
    } catch (err) {
      pool.release(place, bytes);
      if (BUDGET.has((err as { code?: string }).code ?? '')) throw new LinkLimitError(`chunk ${index} cannot be mapped here: ${(err as Error).message}`);
      throw new LinkError(`chunk ${index} cannot be mapped (its grant references are not the peer's grants to us): ${(err as Error).message}`);
    }
    held.mappedPages += count;
    this.#regionPages += pages;
    const chunk: Mapped = { ...place, bytes, pageOffset, granted: false };
    this.#mapped.push(chunk);
    return chunk;
  }

  ring(): void {
    if (!this.#closed) notifyPort(this.port);
  }

  armDoorbell(): void {
    // Nothing to arm: this thread's event channel always polls the port.
  }

  atNextPoll(fn: () => void): void {
    atNextRead(fn); // a Xen link runs in a normal Node process: the host's loop phases serve it
  }

  ref(): void {
    if (this.#closed || this.#refd) return;
    this.#refd = true;
    holdLoop(true);
  }

  unref(): void {
    if (this.#closed || !this.#refd) return;
    this.#refd = false;
    holdLoop(false);
  }

  /** Unmaps every chunk — chunk 0 last: that clears our liveness byte and signals the peer (the
   *  unmap notification) — then unbinds the port; slots return to the pool. */
  close(): void {
    if (this.#closed) return;
    this.unref();
    this.#closed = true;
    this.#unwatch?.();
    this.#unwatch = null;
    const native = xenAddon();
    const pool = regionPool();
    try {
      for (const m of [...this.#mapped].reverse()) {
        native.segmentUnmap(pool.view(m.memory), m.offset, m.bytes);
        if (m.granted) held.grantedPages -= m.bytes / XEN_PAGE;
        else held.mappedPages -= m.bytes / XEN_PAGE;
        pool.release(m, m.bytes);
      }
    } finally {
      this.#mapped.length = 0;
      unbindPort(this.port);
      held.links--;
    }
  }
}

/** gntalloc out of pages is a limit (the connection uses TCP, the link stays); anything else an
 *  error of set-up. */
function budgetOr(err: unknown, what: string): Error {
  const code = (err as { code?: string }).code ?? '';
  if (!BUDGET.has(code)) return err as Error;
  const limit = gntallocLimit();
  return new LinkLimitError(`${what}: this domain's grant budget is used up (${code}; gntalloc limit ${limit ?? '?'} pages for the whole domain, raise it with modprobe xen-gntalloc limit=N)`);
}
