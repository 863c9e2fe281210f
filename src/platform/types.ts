// What every platform (threads, host, later Xen) gives the layers above: one side's end of an
// established channel, with a way to wake the peer and to be woken. The socket layer sees only
// this interface.

import type { Channel } from '../ring/channel.js';

export type PlatformName = 'threads' | 'host' | 'xen';

export interface ChannelEnd {
  readonly platform: PlatformName;
  readonly channel: Channel;
  /** Who is on the other side (a process id on the host platform, a thread id between threads, a
   *  domain id on Xen). */
  readonly peer: { pid?: number; threadId?: number; domid?: number };
  /** Wakes the peer. Call it when a ring call set `peerNeedsWake`. */
  notify(): void;
  /** Called when the peer may have changed something this side waits for (spurious calls are
   *  possible: re-check the rings), and once more after the peer is gone. */
  onwake: (() => void) | null;
  /** Called once when the peer is gone without a clean close (its death, or a broken control
   *  link); the channel has been reset by then. */
  onpeergone: ((reason: string) => void) | null;
  /** Must be called after announcing a wait (prepareWaitData / prepareWaitSpace) and before
   *  relying on onwake. */
  armWake(): void;
  /** Keeps (or stops keeping) the event loop alive for this end, like socket.ref()/unref(). */
  ref(): void;
  unref(): void;
  /** Releases every resource of this end; the peer sees a reset if it has not ended cleanly. */
  close(): void;
  readonly closed: boolean;
}
