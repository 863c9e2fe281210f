// One side of an established host channel: the segment mapped into this thread's region pool, an
// event-channel port bound to the peer's, and the control socket kept open so that the peer's
// death (even SIGKILL) is seen at once as the socket closing.

import type { Channel } from '../../ring/channel.js';
import { ChannelEndBase } from '../common/channel-end.js';
import type { CtlSocket } from './native-api.js';
import { closePort, notifyPort } from './events.js';
import { unmapSegment } from './mapping.js';
import { nativeAddon } from './native.js';

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

export class HostChannelEnd extends ChannelEndBase {
  readonly platform = 'host' as const;
  readonly peer: { pid: number };
  readonly #size: number;
  readonly #port: number;
  readonly #ctl: CtlSocket;
  readonly segmentFd: number | null;

  constructor(r: HostChannelResources) {
    super(r.channel);
    this.peer = { pid: r.pid };
    this.#size = r.size;
    this.#port = r.port;
    this.#ctl = r.ctl;
    this.segmentFd = r.segment ?? null;
  }

  /** Called by the event channel when the peer notified our port. */
  override wake(): void {
    super.wake();
  }

  /** The control socket spoke after set-up (never legitimate) or closed: the peer is gone. */
  controlClosed(code: string | null): void {
    this.peerLost(code === null ? 'the peer closed its control socket' : `control socket error ${code}`);
  }

  armWake(): void {
    // Nothing to arm: the peer's notification arrives on our port whenever it is owed.
  }

  ref(): void {
    if (!this.closed) this.#ctl.ref();
  }

  unref(): void {
    if (!this.closed) this.#ctl.unref();
  }

  protected signalPeer(): void {
    notifyPort(this.#port);
  }

  protected release(): void {
    closePort(this.#port);
    this.#ctl.close();
    unmapSegment(this.channel.offset, this.#size);
    if (this.segmentFd !== null) nativeAddon().closeFd(this.segmentFd);
  }

  /** Bytes mapped for this channel. */
  get size(): number {
    return this.#size;
  }
}
