// The threads platform: both ends live in threads of one process (worker_threads, or Web
// Workers in a browser) and share one WebAssembly.Memory. Waking is Atomics.notify on the
// announcement word the peer sleeps on; waiting without blocking is Atomics.waitAsync. A
// MessagePort pair is the lifeline: its 'close' event tells one side that the other thread
// went away (terminated, crashed or closed), and it is what keeps the event loop alive, since
// a pending waitAsync does not.

import { Channel, type ChannelCapacities, type ChannelSide } from '../ring/channel.js';
import { createSharedMemory, sharedBuffer } from '../ring/memory.js';
import { RESERVED_BYTES } from '../ring/layout.js';
import { ChannelEndBase } from './common/channel-end.js';

/** What one thread posts to the other to give it the acceptor's end (all of it is cloneable;
 *  list `port` in the transfer list). */
export interface ThreadChannelOffer {
  memory: WebAssembly.Memory;
  offset: number;
  capacityA: number;
  capacityB: number;
  port: MessagePort;
  threadId: number;
}

export interface Lifeline {
  on(event: 'close' | 'message', listener: () => void): unknown;
  close(): void;
  ref?(): void;
  unref?(): void;
  start?(): void;
}

export class ThreadChannelEnd extends ChannelEndBase {
  readonly platform = 'threads' as const;
  readonly peer: { pid?: number; threadId?: number };
  readonly #words: Int32Array;
  readonly #lifeline: Lifeline;
  #waitingData = false;
  #waitingSpace = false;

  constructor(channel: Channel, lifeline: Lifeline, peer: { pid?: number; threadId?: number }) {
    super(channel);
    this.peer = peer;
    this.#words = new Int32Array(sharedBuffer(channel.memory));
    this.#lifeline = lifeline;
    lifeline.on('close', () => this.peerLost('the peer thread went away'));
    // Listening for messages is what makes a Node MessagePort hold the event loop (ref/unref
    // then work as on a socket); nothing is ever sent on it.
    lifeline.on('message', () => {});
    lifeline.start?.();
  }

  armWake(): void {
    if (this.closed) return;
    const { tx, rx } = this.channel;
    if (!this.#waitingData) {
      const { async, value } = Atomics.waitAsync(this.#words, rx.dataWaitIndex, 1);
      if (async) {
        this.#waitingData = true;
        void value.then(() => { this.#waitingData = false; this.wake(); });
      }
    }
    const wanted = Atomics.load(this.#words, tx.spaceWaitIndex);
    if (!this.#waitingSpace && wanted !== 0) {
      const { async, value } = Atomics.waitAsync(this.#words, tx.spaceWaitIndex, wanted);
      if (async) {
        this.#waitingSpace = true;
        void value.then(() => { this.#waitingSpace = false; this.wake(); });
      }
    }
    // A word already cleared means the wake-up happened between announcing and arming.
    if (!this.#waitingData && !this.#waitingSpace) queueMicrotask(() => this.wake());
  }

  ref(): void {
    this.#lifeline.ref?.();
  }

  unref(): void {
    this.#lifeline.unref?.();
  }

  protected signalPeer(): void {
    // The peer sleeps on the data word of the ring we write, or on the space word of the ring
    // we read; a notify with no sleeper costs little.
    Atomics.notify(this.#words, this.channel.tx.dataWaitIndex);
    Atomics.notify(this.#words, this.channel.rx.spaceWaitIndex);
  }

  protected release(): void {
    // Wake our own pending waitAsyncs so nothing stays parked on a closed end.
    Atomics.notify(this.#words, this.channel.rx.dataWaitIndex);
    Atomics.notify(this.#words, this.channel.tx.spaceWaitIndex);
    this.#lifeline.close();
  }
}

/** Creates a channel in a new shared memory; returns this thread's (initiator) end and the offer
 *  to post to the other thread: `worker.postMessage(offer, [offer.port])`. */
export function createThreadChannel(caps: ChannelCapacities, threadId: number): { end: ThreadChannelEnd; offer: ThreadChannelOffer } {
  const capacityA = caps.capacityA;
  const capacityB = caps.capacityB ?? capacityA;
  const memory = createSharedMemory({ bytes: Channel.byteLength(capacityA, capacityB) });
  const channel = Channel.create(memory, RESERVED_BYTES, { capacityA, capacityB }, 'initiator');
  const { port1, port2 } = new MessageChannel();
  const end = new ThreadChannelEnd(channel, port1 as unknown as Lifeline, {});
  return { end, offer: { memory, offset: RESERVED_BYTES, capacityA, capacityB, port: port2, threadId } };
}

/** The acceptor's end, in the thread that received an offer. */
export function acceptThreadChannel(offer: ThreadChannelOffer, side: ChannelSide = 'acceptor'): ThreadChannelEnd {
  const channel = Channel.attach(offer.memory, offer.offset, { capacityA: offer.capacityA, capacityB: offer.capacityB }, side);
  return new ThreadChannelEnd(channel, offer.port as unknown as Lifeline, { threadId: offer.threadId });
}
