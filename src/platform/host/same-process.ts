// Links between threads of one process (another worker thread, or the same thread). The two can
// share one WebAssembly.Memory and wake each other with Atomics, so the data path needs no
// descriptor and no system call. The control protocol still does the asking (LINK_THREADS /
// LINK_ACCEPT_THREADS, with the same limits and time-outs as a host link), and its socket stays
// open as the link's lifeline: a thread that exits or crashes has its descriptors closed by the
// addon's clean-up hooks, and the peer sees the socket close.
//
// The memory cannot travel on a Unix socket, so the initiator posts it on a BroadcastChannel named
// after the control socket, tagged with a token it chose and sends in LINK_THREADS; every thread
// of the process could see it, which is no boundary crossed: they share an address space anyway.
// Chunks are the memory growing: the initiator grows it, and both see the new pages at the same
// offsets.

import { randomBytes } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { RESERVED_BYTES, WASM_PAGE } from '../../ring/layout.js';
import { sharedBuffer } from '../../ring/memory.js';
import { CHUNK0_BYTES } from '../common/link-layout.js';
import { LinkError, LinkLimitError, roomPages, type ChunkPlace, type LinkPlatform } from '../common/link.js';
import type { CtlSocket } from './native-api.js';
import { atNextRead } from './loop-phases.js';

const channelName = (controlPath: string) => `xway:${controlPath}`;

/** Pages a threads link's memory may hold (wasm32: 4 GiB at most). */
const MAXIMUM_PAGES = 65536;
/** Where the memory's ring chunks begin: the reserved page, then chunk 0. */
const CHUNK0_PAGES = (RESERVED_BYTES + CHUNK0_BYTES) / WASM_PAGE;

interface Offer {
  token: string;
  memory: WebAssembly.Memory;
}

/** A control socket as a threads link's lifeline: 'lost' when the peer's socket closes. */
export class CtlLifeline {
  readonly #ctl: CtlSocket;
  onlost: (() => void) | null = null;
  #lost = false;

  constructor(ctl: CtlSocket) {
    this.#ctl = ctl;
  }

  /** The control socket closed, or spoke after set-up (never legitimate): the peer is gone. */
  controlClosed(): void {
    if (this.#lost) return;
    this.#lost = true;
    this.onlost?.();
  }

  close(): void {
    this.#lost = true;
    this.#ctl.close();
  }

  /** Reads an EOF that already came (the peer thread is gone) now. */
  checkAlive(): void {
    if (!this.#lost) this.#ctl.receiveNow();
  }

  ref(): void {
    if (!this.#lost) this.#ctl.ref();
  }

  unref(): void {
    if (!this.#lost) this.#ctl.unref();
  }
}

export class ThreadsLinkPlatform implements LinkPlatform {
  readonly name = 'threads' as const;
  readonly peer: { pid: number; threadId?: number };
  readonly chunk0: ChunkPlace;
  readonly memory: WebAssembly.Memory;
  readonly #words: Int32Array;
  readonly #lifeline: CtlLifeline;
  readonly #maxBytes: number;
  /** The region's end, in pages, as far as this side knows. */
  #pages: number;
  #waiting = false;
  #word = -1;
  #closed = false;
  /** Set by the link's owner: what to do when our doorbell word is rung. */
  ondoorbell: (() => void) | null = null;

  constructor(memory: WebAssembly.Memory, lifeline: CtlLifeline, peer: { pid: number; threadId?: number }, maxBytes: number) {
    this.memory = memory;
    this.#words = new Int32Array(sharedBuffer(memory));
    this.#lifeline = lifeline;
    this.peer = peer;
    this.#maxBytes = maxBytes;
    this.chunk0 = { memory, offset: RESERVED_BYTES, bytes: CHUNK0_BYTES };
    this.#pages = CHUNK0_PAGES;
  }

  /** A fresh memory with chunk 0 in it (the initiator's). */
  static createMemory(): WebAssembly.Memory {
    return new WebAssembly.Memory({ initial: (RESERVED_BYTES + CHUNK0_BYTES) / WASM_PAGE, maximum: MAXIMUM_PAGES, shared: true });
  }

  addChunk(_index: number, want: number, minPages: number): { place: ChunkPlace; pageOffset: number; pages: number } {
    const pages = Math.min(want, roomPages(this.#maxBytes, this.#pages, CHUNK0_PAGES), MAXIMUM_PAGES - this.#pages);
    if (pages < minPages) throw new LinkLimitError(`the link's ring memory would pass its limit of ${this.#maxBytes} bytes`);
    const pageOffset = this.memory.grow(pages);
    this.#pages = pageOffset + pages;
    return { place: { memory: this.memory, offset: pageOffset * WASM_PAGE, bytes: pages * WASM_PAGE }, pageOffset, pages };
  }

  mapChunk(_index: number, pageOffset: number, pages: number): ChunkPlace {
    if (pageOffset !== this.#pages) throw new LinkError(`chunk at page ${pageOffset}, expected ${this.#pages}`);
    const end = pageOffset + pages;
    if (pages > roomPages(this.#maxBytes, this.#pages, CHUNK0_PAGES)) throw new LinkLimitError(`the peer's region would pass this side's limit of ${this.#maxBytes} bytes`);
    if (end * WASM_PAGE > this.memory.buffer.byteLength) throw new LinkError(`chunk up to page ${end} is beyond the memory (${this.memory.buffer.byteLength} bytes)`);
    this.#pages = end;
    return { memory: this.memory, offset: pageOffset * WASM_PAGE, bytes: pages * WASM_PAGE };
  }

  ring(word: number): void {
    Atomics.notify(this.#words, word);
  }

  /** Waits (without blocking the thread) for the peer to swap our armed word to 0 and notify. */
  armDoorbell(word: number): void {
    if (this.#closed || this.#waiting) return;
    this.#word = word;
    const { async, value } = Atomics.waitAsync(this.#words, word, 1);
    if (!async) {
      queueMicrotask(() => this.ondoorbell?.()); // rung between arming and waiting
      return;
    }
    this.#waiting = true;
    void value.then(() => {
      this.#waiting = false;
      if (!this.#closed) this.ondoorbell?.();
    });
  }

  checkAlive(): void {
    if (!this.#closed) this.#lifeline.checkAlive();
  }

  atNextPoll(fn: () => void): void {
    atNextRead(fn);
  }

  ref(): void {
    this.#lifeline.ref();
  }

  unref(): void {
    this.#lifeline.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifeline.close();
    // A pending waitAsync resolves with a notify; nothing then runs (closed).
    if (this.#word >= 0) Atomics.notify(this.#words, this.#word);
  }
}

/** The initiator's half: posts the link's memory for the acceptor thread. */
export function postLinkMemory(controlPath: string, memory: WebAssembly.Memory): string {
  const token = randomBytes(16).toString('hex');
  const channel = new BroadcastChannel(channelName(controlPath));
  channel.postMessage({ token, memory } satisfies Offer);
  channel.close();
  return token;
}

/** The acceptor's half: the memories posted for this thread's listener, by token. A memory may
 *  come before or after the LINK_THREADS that names it. */
export class LinkMemoryReceiver {
  readonly #channel: BroadcastChannel;
  readonly #offers = new Map<string, WebAssembly.Memory>();
  readonly #waiters = new Map<string, (memory: WebAssembly.Memory) => void>();

  constructor(controlPath: string) {
    this.#channel = new BroadcastChannel(channelName(controlPath));
    (this.#channel as unknown as { unref(): void }).unref(); // listening holds no event loop open
    this.#channel.onmessage = (event) => {
      const data = (event as { data: unknown }).data as Partial<Offer> | null;
      if (typeof data?.token !== 'string' || !(data.memory instanceof WebAssembly.Memory)) return;
      const waiter = this.#waiters.get(data.token);
      if (waiter) {
        this.#waiters.delete(data.token);
        waiter(data.memory);
      } else if (this.#offers.size < 256) {
        this.#offers.set(data.token, data.memory);
      }
    };
  }

  /** Calls `use` with the memory posted under `token` (at once if it is here already). */
  when(token: string, use: (memory: WebAssembly.Memory) => void): () => void {
    const memory = this.#offers.get(token);
    if (memory) {
      this.#offers.delete(token);
      use(memory);
      return () => {};
    }
    this.#waiters.set(token, use);
    return () => this.#waiters.delete(token);
  }

  close(): void {
    this.#channel.close();
    this.#offers.clear();
    this.#waiters.clear();
  }
}
