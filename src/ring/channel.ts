// Channel: the two rings of one connection (XWAY's "dual channel") laid out in one region, so
// that one mapping of one region connects two peers. Ring A carries initiator -> acceptor,
// ring B acceptor -> initiator; each side sees its own `tx` and `rx`.

import { check, coreFor } from './core.js';
import { CHANNEL_HEADER, C_STAGE_A, C_STAGE_B, RESERVED_BYTES, channelByteLength, isValidCapacity, MIN_CAPACITY, MAX_CAPACITY } from './layout.js';
import { Ring } from './ring.js';
import { sharedBuffer } from './memory.js';
import { XwayRangeError } from '../errors.js';

export type ChannelSide = 'initiator' | 'acceptor';

export interface ChannelCapacities {
  /** Capacity of ring A (initiator -> acceptor). */
  capacityA: number;
  /** Capacity of ring B (acceptor -> initiator). Defaults to capacityA. */
  capacityB?: number;
}

export class Channel {
  readonly memory: WebAssembly.Memory;
  readonly offset: number;
  readonly side: ChannelSide;
  readonly capacityA: number;
  readonly capacityB: number;
  /** The ring this side writes. */
  readonly tx: Ring;
  /** The ring this side reads. */
  readonly rx: Ring;

  /** Bytes a channel with these capacities occupies. */
  static byteLength(capacityA: number, capacityB = capacityA): number {
    return channelByteLength(capacityA, capacityB);
  }

  /** Lays out a new channel at `offset` and returns `side`'s end of it. */
  static create(memory: WebAssembly.Memory, offset: number, caps: ChannelCapacities, side: ChannelSide = 'initiator'): Channel {
    const [capacityA, capacityB] = validate(memory, offset, caps);
    check(coreFor(memory).channelInit(offset, capacityA, capacityB), 'Channel.create');
    return new Channel(memory, offset, capacityA, capacityB, side);
  }

  /** Checks a channel laid out by the peer and returns `side`'s end of it. */
  static attach(memory: WebAssembly.Memory, offset: number, caps: ChannelCapacities, side: ChannelSide = 'acceptor'): Channel {
    const [capacityA, capacityB] = validate(memory, offset, caps);
    check(coreFor(memory).channelCheck(offset, capacityA, capacityB), 'Channel.attach');
    return new Channel(memory, offset, capacityA, capacityB, side);
  }

  private constructor(memory: WebAssembly.Memory, offset: number, capacityA: number, capacityB: number, side: ChannelSide) {
    this.memory = memory;
    this.offset = offset;
    this.side = side;
    this.capacityA = capacityA;
    this.capacityB = capacityB;
    const a = Ring.attach(memory, offset + CHANNEL_HEADER, capacityA);
    const b = Ring.attach(memory, offset + CHANNEL_HEADER + Ring.byteLength(capacityA), capacityB);
    a.useStageRecord(offset + C_STAGE_A);
    b.useStageRecord(offset + C_STAGE_B);
    [this.tx, this.rx] = side === 'initiator' ? [a, b] : [b, a];
  }

  /** Bytes this channel occupies. */
  get byteLength(): number {
    return channelByteLength(this.capacityA, this.capacityB);
  }

  /** Cuts this object off both rings for good (see Ring.revoke): done before the channel's memory
   *  is reused. */
  revoke(): void {
    this.tx.revoke();
    this.rx.revoke();
  }

  /** Resets both directions (the RST of a connection). Returns whether the peer was waiting on
   *  either ring and must be woken. */
  abort(): boolean {
    const tx = this.tx.abort();
    const rx = this.rx.abort();
    return tx.wakeConsumer || rx.wakeProducer;
  }

  /**
   * This side closes the connection, as close() closes a TCP socket: bytes it never read still
   * waiting in rx make it a reset (RST); otherwise end of stream (FIN) follows what it wrote, and
   * rx is marked closed, so that data the peer sends from now on is answered with a reset.
   * Returns whether the peer must be woken to see it.
   */
  close(): boolean {
    if (this.tx.isReset || this.rx.isReset) return false; // reset already: nothing left to say
    if (this.rx.unread > 0) return this.abort();
    let wake = this.tx.finished ? false : this.tx.end();
    wake = this.rx.closeConsumer() || wake;
    // Data that arrived between the check and the mark is data after close: reset, as TCP does.
    if (this.rx.unread > 0) return this.abort() || wake;
    return wake;
  }

  /**
   * The peer is gone (its process, thread or domain, or the link to it) without having closed:
   * what its kernel would have done when its descriptor was closed at its death, done on its
   * behalf. Bytes we sent that it never read make a reset; otherwise its stream ends after what
   * it wrote. Returns true when the peer had not closed (nor reset) before it went.
   */
  closeForPeer(): boolean {
    // What it had written but held back (Ring.stage) was in its kernel, over TCP: it arrives.
    this.rx.adoptStaged();
    if (this.tx.isReset || this.rx.isReset || this.tx.consumerClosed) return false;
    if (this.tx.unread > 0) {
      this.abort();
    } else {
      if (!this.rx.finished) this.rx.end();
      this.tx.closeConsumer();
    }
    return true;
  }
}

function validate(memory: WebAssembly.Memory, offset: number, caps: ChannelCapacities): [number, number] {
  const capacityA = caps.capacityA;
  const capacityB = caps.capacityB ?? capacityA;
  for (const cap of [capacityA, capacityB]) {
    if (!isValidCapacity(cap)) {
      throw new XwayRangeError(`capacity must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${cap}`);
    }
  }
  if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('memory must be a shared WebAssembly.Memory');
  const size = sharedBuffer(memory).byteLength;
  if (!Number.isInteger(offset) || offset % 64 !== 0 || offset < RESERVED_BYTES || offset + channelByteLength(capacityA, capacityB) > size) {
    throw new XwayRangeError(
      `offset must be a multiple of 64 from ${RESERVED_BYTES} with the channel inside the memory (${size} bytes), got ${offset}`);
  }
  return [capacityA, capacityB];
}
