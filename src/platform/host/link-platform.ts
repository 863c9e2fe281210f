// A link between threads of two processes on one host: the region is one memfd (the initiator
// creates it and grows it a chunk at a time; it is sealed against shrinking, so a peer cannot
// make our mapping SIGBUS), each chunk mapped into this thread's region pool; the doorbell is an
// eventfd per side, dispatched by this thread's event channel; the lifeline is the control socket
// the link was set up on.

import fs from 'node:fs';
import { WASM_PAGE } from '../../ring/layout.js';
import { regionPool, type Placement } from '../common/region-pool.js';
import type { ChunkPlace, LinkPlatform } from '../common/link.js';
import { LinkError, LinkLimitError, roomPages } from '../common/link.js';
import type { CtlSocket } from './native-api.js';
import { atNextRead } from './loop-phases.js';
import { closePort, notifyPort } from './events.js';
import { nativeAddon } from './native.js';

export interface HostLinkResources {
  /** The region's memfd: the initiator grows it, the acceptor maps later chunks from it. */
  regionFd: number;
  /** Chunk 0, mapped. */
  chunk0: Placement & { bytes: number };
  /** Our event port (its eventfd is the peer's doorbell for us); bound to the peer's eventfd. */
  port: number;
  ctl: CtlSocket;
  pid: number;
  /** Largest region this side accepts or makes. */
  maxBytes: number;
  /** Where the peer says it lives (network namespace, container), for observers. */
  place?: { netns: string; container: string };
}

export class HostLinkPlatform implements LinkPlatform {
  readonly name = 'host' as const;
  readonly peer: { pid: number; netns?: string; container?: string };
  readonly chunk0: ChunkPlace;
  readonly regionFd: number;
  readonly #port: number;
  readonly #ctl: CtlSocket;
  readonly #maxBytes: number;
  /** Every chunk mapped here (chunk 0 first), and the region's size in pages as far as we know. */
  readonly #mapped: (Placement & { bytes: number; pageOffset: number })[] = [];
  #pages: number;
  readonly #chunk0Pages: number;
  #closed = false;

  constructor(r: HostLinkResources) {
    this.peer = { pid: r.pid, ...(r.place ? { netns: r.place.netns, container: r.place.container } : {}) };
    this.chunk0 = r.chunk0;
    this.regionFd = r.regionFd;
    this.#port = r.port;
    this.#ctl = r.ctl;
    this.#maxBytes = r.maxBytes;
    this.#mapped.push({ ...r.chunk0, pageOffset: 0 });
    this.#pages = r.chunk0.bytes / WASM_PAGE;
    this.#chunk0Pages = this.#pages;
  }

  /** Where a channel is in the region's memfd, for observers reading through it (xway stat). */
  #ino = -1;

  locate(chunk: number, offset: number): { fd: number; fileOffset: number; ino: number } {
    if (this.#ino < 0) this.#ino = fs.fstatSync(this.regionFd).ino; // once per link, not per connection
    return { fd: this.regionFd, fileOffset: (this.#mapped[chunk]?.pageOffset ?? 0) * WASM_PAGE + offset, ino: this.#ino };
  }

  discard(chunk: number, offset: number, length: number): void {
    const m = this.#mapped[chunk];
    if (!m || offset < 0 || offset + length > m.bytes) throw new RangeError('outside the chunk');
    nativeAddon().regionDiscard(this.regionFd, m.pageOffset * WASM_PAGE + offset, length);
  }

  addChunk(_index: number, want: number, minPages: number): { place: ChunkPlace; pageOffset: number; pages: number } {
    const pages = Math.min(want, roomPages(this.#maxBytes, this.#pages, this.#chunk0Pages));
    if (pages < minPages) throw new LinkLimitError(`the link's ring memory would pass its limit of ${this.#maxBytes} bytes`);
    const bytes = pages * WASM_PAGE;
    const pageOffset = this.#pages;
    const native = nativeAddon();
    native.regionGrow(this.regionFd, (pageOffset + pages) * WASM_PAGE);
    const place = this.#map(pageOffset, bytes);
    this.#pages = pageOffset + pages;
    return { place, pageOffset, pages };
  }

  mapChunk(_index: number, pageOffset: number, pages: number): ChunkPlace {
    // Chunks follow each other in the file; anything else is not the region we were given.
    if (pageOffset !== this.#pages) throw new LinkError(`chunk at page ${pageOffset}, expected ${this.#pages}`);
    if (pages > roomPages(this.#maxBytes, this.#pages, this.#chunk0Pages)) {
      throw new LinkLimitError(`the peer's region would pass this side's limit of ${this.#maxBytes} bytes`);
    }
    const place = this.#map(pageOffset, pages * WASM_PAGE); // the addon checks the memfd holds it
    this.#pages = pageOffset + pages;
    return place;
  }

  #map(pageOffset: number, bytes: number): ChunkPlace {
    const pool = regionPool();
    const place = pool.allocate(bytes);
    try {
      nativeAddon().segmentMap(pool.view(place.memory), place.offset, bytes, this.regionFd, pageOffset * WASM_PAGE);
    } catch (err) {
      pool.release(place, bytes);
      throw err;
    }
    const chunk = { ...place, bytes, pageOffset };
    this.#mapped.push(chunk);
    return chunk;
  }

  ring(): void {
    if (!this.#closed) notifyPort(this.#port);
  }

  armDoorbell(): void {
    // Nothing to arm: the eventfd is always polled by this thread's event channel.
  }

  checkAlive(): void {
    if (!this.#closed) this.#ctl.receiveNow(); // an EOF already there is the peer's death
  }

  atNextPoll(fn: () => void): void {
    atNextRead(fn);
  }

  ref(): void {
    if (!this.#closed) this.#ctl.ref();
  }

  unref(): void {
    if (!this.#closed) this.#ctl.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const native = nativeAddon();
    const pool = regionPool();
    closePort(this.#port);
    this.#ctl.close();
    for (const m of this.#mapped) {
      native.segmentUnmap(pool.view(m.memory), m.offset, m.bytes);
      pool.release(m, m.bytes);
    }
    this.#mapped.length = 0;
    native.closeFd(this.regionFd);
  }
}
