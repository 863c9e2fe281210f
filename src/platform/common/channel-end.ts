// What every platform's channel end shares: closing as TCP closes, and the peer's loss reported as
// the peer's kernel would have reported the close of its descriptor. A platform supplies only how
// to signal the peer, how to release its resources, and when it learns the peer is gone.

import type { Channel } from '../../ring/channel.js';
import type { ChannelEnd, ConnectionInfo, PlatformName } from '../types.js';

export abstract class ChannelEndBase implements ChannelEnd {
  abstract readonly platform: PlatformName;
  readonly channel: Channel;
  abstract readonly peer: ChannelEnd['peer'];
  onwake: (() => void) | null = null;
  onpeergone: ((reason: string) => void) | null = null;
  connection: ConnectionInfo | null = null;
  onclose: (() => void) | null = null;
  #closed = false;
  #peerGone = false;
  #vanished = false;

  constructor(channel: Channel) {
    this.channel = channel;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The peer has gone (closed, died, or its link broke). */
  get peerGone(): boolean {
    return this.#peerGone;
  }

  /** The peer's whole machine vanished (see peerVanished). */
  get vanished(): boolean {
    return this.#vanished;
  }

  notify(): void {
    if (!this.#closed && !this.#peerGone) this.signalPeer();
  }

  /** This side wrote into its tx ring (see ChannelEnd.wrote); nothing to do unless a platform
   *  gives idle pages back. */
  wrote(): void {}

  /** TCP's close(): FIN after what was written, or RST if bytes we never read are waiting (see
   *  Channel.close); then every resource of this end is released at once. */
  close(): void {
    if (this.#closed) return;
    if (!this.#peerGone && this.channel.close()) this.signalPeer();
    this.#closed = true;
    this.onwake = null;
    this.onpeergone = null;
    this.release();
    const onclose = this.onclose;
    this.onclose = null;
    onclose?.();
  }

  /** The platform saw the peer go. Whatever it had not closed is closed on its behalf (see
   *  Channel.closeForPeer), and this side is woken to read what is left. */
  protected peerLost(reason: string): void {
    if (this.#closed || this.#peerGone) return;
    this.#peerGone = true;
    const unclosed = this.channel.closeForPeer();
    this.onwake?.();
    if (unclosed) this.onpeergone?.(reason);
  }

  /** The peer's machine vanished (a Xen domain destroyed): no kernel of its closed anything, so
   *  no FIN and no reset — a TCP peer would retransmit until it gives up with ETIMEDOUT, which is
   *  what the socket above reports (sooner) once it has read what had arrived. */
  protected peerVanished(reason: string): void {
    if (this.#closed || this.#peerGone) return;
    this.#peerGone = true;
    this.#vanished = true;
    this.onwake?.();
    this.onpeergone?.(reason);
  }

  /** Delivers a wake-up from the peer to the socket above. */
  protected wake(): void {
    if (!this.#closed) this.onwake?.();
  }

  abstract armWake(): void;
  abstract ref(): void;
  abstract unref(): void;
  /** Wakes the peer (its event channel, futex word or port). */
  protected abstract signalPeer(): void;
  /** Frees the mapping, ports and descriptors of this end. Called once, by close(). */
  protected abstract release(): void;
}
