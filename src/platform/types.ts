// What every platform (threads, host, later Xen) gives the layers above: one side's end of an
// established channel, with a way to wake the peer and to be woken. The socket layer sees only
// this interface.

import type { Channel } from '../ring/channel.js';
import type { Route } from '../socket/identity.js';

/** What set-up agreed for a connection made through a listener: the route the client took and the
 *  ephemeral port both ends report (see socket/identity.ts). */
export interface ConnectionInfo {
  port: number;
  route: Route;
}

export type PlatformName = 'threads' | 'host' | 'xen';

export interface ChannelEnd {
  readonly platform: PlatformName;
  readonly channel: Channel;
  /** Who is on the other side (a process id on the host platform, a thread id between threads, a
   *  domain id on Xen). */
  readonly peer: { pid?: number; threadId?: number; domid?: number; netns?: string; container?: string };
  /** Set for connections made through a listener; null for channels made by hand. */
  connection: ConnectionInfo | null;
  /** Called once, after close() released this end (a listener frees the connection's port). */
  onclose: (() => void) | null;
  /** Wakes the peer. Call it when a ring call set `peerNeedsWake`. */
  notify(): void;
  /** Optional: told after this side wrote into its tx ring (a link then knows the ring's pages are
   *  in use again, after it gave them back while the connection was idle). */
  wrote?(): void;
  /** Called when the peer may have changed something this side waits for (spurious calls are
   *  possible: re-check the rings), and once more after the peer is gone. */
  onwake: (() => void) | null;
  /** Called once when the peer went (its death, or a broken link) without having closed its end:
   *  by then its close has been applied on its behalf, as its kernel would have (FIN, or RST if it
   *  left bytes of ours unread), and onwake has run. Informational: the rings say the rest. */
  onpeergone: ((reason: string) => void) | null;
  /** True once the peer's whole machine vanished without closing anything (a destroyed Xen
   *  domain): the rings are left as they were, and the connection times out (ETIMEDOUT). */
  readonly vanished?: boolean;
  /** Must be called after announcing a wait (prepareWaitData / prepareWaitSpace) and before
   *  relying on onwake. */
  armWake(): void;
  /** Optional: holds this end's wake-ups of the peer back until the matching releasePeer(), which
   *  then wakes it at most once — so a last write and the FIN after it, or a connect and what its
   *  'connect' listeners wrote, reach a sleeping peer in one wake-up. Calls come in pairs. */
  holdPeer?(): void;
  releasePeer?(): void;
  /** Keeps (or stops keeping) the event loop alive for this end, like socket.ref()/unref(). */
  ref(): void;
  unref(): void;
  /** TCP's close(): the peer gets FIN after what this side wrote, or RST if bytes this side never
   *  read are waiting; then every resource of this end is released. */
  close(): void;
  readonly closed: boolean;
}
