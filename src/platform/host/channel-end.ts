// One side of an established host channel: the segment mapped into this thread's region pool, an
// event-channel port bound to the peer's, and the control socket kept open so that the peer's
// death (even SIGKILL) is seen at once as the socket closing.

import type { Channel } from '../../ring/channel.js';
import type { ChannelEnd } from '../types.js';
import type { CtlSocket } from './native-api.js';
import { closePort, notifyPort } from './events.js';
import { unmapSegment } from './mapping.js';
import { nativeAddon } from './native.js';

const closeFd = (fd: number) => nativeAddon().closeFd(fd);

export interface HostChannelResources {
  channel: Channel;
  /** Bytes mapped at channel.offset. */
  size: number;
  port: number;
  ctl: CtlSocket;
  pid: number;
  /** The acceptor keeps its segment's descriptor for observers (see stat/publish.ts). */
  segment?: number;
}

export class HostChannelEnd implements ChannelEnd {
  readonly platform = 'host' as const;
  readonly channel: Channel;
  readonly peer: { pid: number };
  onwake: (() => void) | null = null;
  onpeergone: ((reason: string) => void) | null = null;
  #size: number;
  #port: number;
  #ctl: CtlSocket;
  readonly segmentFd: number | null;
  #closed = false;
  #peerGone = false;

  constructor(r: HostChannelResources) {
    this.channel = r.channel;
    this.peer = { pid: r.pid };
    this.#size = r.size;
    this.#port = r.port;
    this.#ctl = r.ctl;
    this.segmentFd = r.segment ?? null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Called by the event channel when the peer notified our port. */
  wake(): void {
    if (!this.#closed) this.onwake?.();
  }

  /** The control socket spoke after set-up (never legitimate) or closed. */
  controlClosed(code: string | null): void {
    if (this.#closed || this.#peerGone) return;
    this.#peerGone = true;
    // A peer that ended its stream has said goodbye however its control socket then closes (it
    // is reset, not closed, when the peer exits with a message of ours unread).
    const unclean = this.channel.resetAfterPeerLoss(code === null || this.channel.rx.finished);
    this.onwake?.();
    if (unclean) {
      this.onpeergone?.(code === null ? 'peer closed its control socket without ending the stream' : `control socket error ${code}`);
    }
  }

  notify(): void {
    if (!this.#closed && !this.#peerGone) notifyPort(this.#port);
  }

  armWake(): void {
    // Nothing to arm: the peer's notification arrives on our port whenever it is owed.
  }

  ref(): void {
    if (!this.#closed) this.#ctl.ref();
  }

  unref(): void {
    if (!this.#closed) this.#ctl.unref();
  }

  close(): void {
    if (this.#closed) return;
    if (!this.#peerGone && this.channel.resetUnlessEnded()) notifyPort(this.#port);
    this.#closed = true;
    closePort(this.#port);
    this.#ctl.close();
    unmapSegment(this.channel.offset, this.#size);
    if (this.segmentFd !== null) closeFd(this.segmentFd);
  }

  /** Bytes mapped for this channel. */
  get size(): number {
    return this.#size;
  }
}
