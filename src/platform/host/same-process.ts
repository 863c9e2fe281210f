// Thread channels set up through a host control socket. When the client is in the server's own
// process (another worker thread, or the same thread), the two can share one WebAssembly.Memory
// and wake each other with Atomics, so the data path needs no descriptor and no system call. The
// control protocol still does the asking (HELLO_THREADS / ACCEPT_THREADS, with the same limits and
// time-outs as a host channel), and its socket stays open as the channel's lifeline: a thread
// that exits or crashes has its descriptors closed by the addon's clean-up hooks, and the peer sees
// the socket close. The memory cannot travel on a Unix socket, so it goes on a BroadcastChannel
// named after the control socket, tagged with a token the client chose; every thread of the
// process could see it, which is no boundary crossed: they share an address space anyway.

import { randomBytes } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { Channel } from '../../ring/channel.js';
import { createSharedMemory } from '../../ring/memory.js';
import { RESERVED_BYTES } from '../../ring/layout.js';
import { ThreadChannelEnd } from '../threads.js';
import type { CtlSocket } from './native-api.js';

interface Offer {
  token: string;
  memory: WebAssembly.Memory;
  offset: number;
  capacityA: number;
  capacityB: number;
}

const channelName = (controlPath: string) => `xway:${controlPath}`;

/** A control socket as a ThreadChannelEnd's lifeline: 'close' when the peer's socket closes. */
export class CtlLifeline {
  readonly #ctl: CtlSocket;
  readonly #onClose: (() => void)[] = [];
  #lost = false;

  constructor(ctl: CtlSocket) {
    this.#ctl = ctl;
  }

  on(event: 'close' | 'message', listener: () => void): this {
    if (event === 'close') this.#onClose.push(listener);
    return this;
  }

  /** The control socket closed, or spoke after set-up (never legitimate): the peer is gone. */
  controlClosed(): void {
    if (this.#lost) return;
    this.#lost = true;
    for (const listener of this.#onClose) listener();
  }

  close(): void {
    this.#lost = true;
    this.#ctl.close();
  }

  ref(): void {
    if (!this.#lost) this.#ctl.ref();
  }

  unref(): void {
    if (!this.#lost) this.#ctl.unref();
  }
}

/** The acceptor's half: lays out a channel in a new memory and posts it for the client. */
export class OfferPoster {
  readonly #channel: BroadcastChannel;

  constructor(controlPath: string) {
    this.#channel = new BroadcastChannel(channelName(controlPath));
    (this.#channel as unknown as { unref(): void }).unref(); // posting holds no event loop open
  }

  offer(token: string, capacityA: number, capacityB: number): Channel {
    const memory = createSharedMemory({ bytes: Channel.byteLength(capacityA, capacityB) });
    const channel = Channel.create(memory, RESERVED_BYTES, { capacityA, capacityB }, 'acceptor');
    const offer: Offer = { token, memory, offset: RESERVED_BYTES, capacityA, capacityB };
    this.#channel.postMessage(offer);
    return channel;
  }

  close(): void {
    this.#channel.close();
  }
}

/** The client's half: listens for the offer carrying its token (open before HELLO_THREADS is
 *  sent, since a BroadcastChannel delivers only to channels already open). */
export class OfferReceiver {
  readonly token = randomBytes(16).toString('hex');
  readonly #channel: BroadcastChannel;
  #offer: Offer | null = null;
  #waiter: ((offer: Offer) => void) | null = null;

  constructor(controlPath: string) {
    this.#channel = new BroadcastChannel(channelName(controlPath));
    this.#channel.onmessage = (event) => {
      const data = (event as { data: unknown }).data as Partial<Offer> | null;
      if (data?.token !== this.token || !(data.memory instanceof WebAssembly.Memory)) return;
      this.#offer = data as Offer;
      this.#channel.close();
      this.#waiter?.(this.#offer);
    };
  }

  /** Calls `use` with the offer once it is here (at once if it already is). */
  whenOffered(use: (offer: Offer) => void): void {
    if (this.#offer) use(this.#offer);
    else this.#waiter = use;
  }

  /** Attaches the initiator's end to an offer, checking it against what was granted. */
  static attach(offer: Offer, capacityA: number, capacityB: number, lifeline: CtlLifeline, peerPid: number): ThreadChannelEnd {
    if (offer.capacityA !== capacityA || offer.capacityB !== capacityB || offer.offset !== RESERVED_BYTES) {
      throw new Error(`the offered thread channel (${offer.capacityA}/${offer.capacityB} at ${offer.offset}) is not the one granted`);
    }
    const channel = Channel.attach(offer.memory, offer.offset, { capacityA, capacityB }, 'initiator');
    return new ThreadChannelEnd(channel, lifeline, { pid: peerPid });
  }

  close(): void {
    this.#waiter = null;
    this.#channel.close();
  }
}
