// One side of an established Xen channel: granted pages mapped into this thread's region pool (the
// client shares them with gntalloc, the server maps them with gntdev), and an interdomain event
// channel. The peer's loss is seen through its liveness byte, which the peer's kernel clears when
// the peer's mapping goes away (clean close, crash or kill), with an event to wake us; a XenStore
// watch on @releaseDomain covers a whole domain vanishing (then no guest kernel runs that notify).

import type { Channel } from '../../ring/channel.js';
import { ChannelEndBase } from '../common/channel-end.js';
import { regionPool } from '../common/region-pool.js';
import { holdLoop, notifyPort, unbindPort } from './events.js';
import { xenAddon } from './native.js';
import { watch, xenStore } from './store.js';

export interface XenChannelResources {
  channel: Channel;
  /** Bytes granted (and mapped) at channel.offset. */
  size: number;
  /** Bytes of the region-pool slot at channel.offset (a whole number of wasm pages). */
  slotSize: number;
  /** Our local event-channel port, connected to the peer's. */
  port: number;
  domid: number;
  /** Offsets (from channel.offset) of our and the peer's liveness bytes. */
  ownAlive: number;
  peerAlive: number;
}

export class XenChannelEnd extends ChannelEndBase {
  readonly platform = 'xen' as const;
  readonly peer: { domid: number };
  readonly #r: XenChannelResources;
  #refd = false;
  #unwatch: (() => void) | null = null;
  /** Whether the peer's /local/domain/<id>/domid was readable here (see #checkDomain). */
  #domidReadable = false;

  constructor(r: XenChannelResources) {
    super(r.channel);
    this.#r = r;
    this.peer = { domid: r.domid };
    // A destroyed domain runs no unmap notification, and while we map its pages Xen keeps it a
    // zombie (so @releaseDomain may wait for us); the toolstack removing its XenStore home is the
    // first sign, where we may see it.
    const unwatch: (() => void)[] = [];
    for (const path of ['@releaseDomain', `/local/domain/${r.domid}/domid`]) {
      try {
        unwatch.push(watch(path, () => this.#checkDomain()));
      } catch { /* the liveness byte still works */ }
    }
    this.#unwatch = () => { for (const u of unwatch) u(); };
    this.ref();
  }

  /** Whether the peer still maps the channel (its liveness byte is set). */
  get peerAlive(): boolean {
    return Atomics.load(this.#bytes(), this.channel.offset + this.#r.peerAlive) === 1;
  }

  #bytes(): Uint8Array {
    return new Uint8Array(this.channel.memory.buffer);
  }

  /** Called by the event channel when the peer notified our port (or its mapping went away). */
  override wake(): void {
    if (this.closed) return;
    if (!this.peerGone && !this.peerAlive) {
      this.peerLost('the peer unmapped the channel');
      return;
    }
    super.wake();
  }

  #checkDomain(): void {
    if (this.closed || this.peerGone) return;
    let exists: boolean;
    try {
      exists = xenStore().read(`/local/domain/${this.#r.domid}/domid`) !== null;
      this.#domidReadable = true;
    } catch (err) {
      // XenStore answers EACCES, not ENOENT, for a node that is gone when its nearest remaining
      // ancestor is not ours to read (/local/domain is not, for a guest). So a node we could read
      // (dom0's xen-permit.sh lets recorded guests read each other's) that now answers EACCES
      // was removed with the domain's home; one we never could read tells nothing: keep relying
      // on the liveness byte.
      if ((err as { code?: string }).code !== 'EACCES' || !this.#domidReadable) return;
      exists = false;
    }
    if (!exists) this.peerVanished(`peer domain ${this.#r.domid} is gone`);
  }

  armWake(): void {
    // The peer's notification arrives on our port whenever it is owed; only re-check liveness.
    if (!this.closed && !this.peerGone && !this.peerAlive) queueMicrotask(() => this.wake());
  }

  ref(): void {
    if (this.closed || this.#refd) return;
    this.#refd = true;
    holdLoop(true);
  }

  unref(): void {
    if (this.closed || !this.#refd) return;
    this.#refd = false;
    holdLoop(false);
  }

  protected signalPeer(): void {
    notifyPort(this.#r.port);
  }

  protected release(): void {
    if (this.#refd) {
      this.#refd = false;
      holdLoop(false);
    }
    this.#unwatch?.();
    const { channel, slotSize, port } = this.#r;
    // Unmapping clears our liveness byte and signals the peer (the unmap notification), then the
    // port goes; the slot returns to the pool.
    const pool = regionPool();
    try {
      xenAddon().segmentUnmap(pool.view(channel.memory), channel.offset, slotSize); // whole wasm pages
    } finally {
      unbindPort(port);
      pool.release({ memory: channel.memory, offset: channel.offset }, slotSize);
    }
  }
}
