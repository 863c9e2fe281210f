// The accepting side of host links (see protocol.ts for the exchange). One listener per server
// thread, whatever the number of ports it serves: for each client thread that connects,
//   LINK         -> check the region (a sealed memfd holding chunk 0) and map chunk 0, check the
//                   link header, open an event port and bind the client's eventfd
//   LINK_ACCEPT  -> our eventfd; the link is up, and its connections are opened through it
// (or LINK_THREADS / LINK_ACCEPT_THREADS for a client thread of this process). Anything malformed,
// out of range or late is refused with a reason, and everything made for that client is released
// before the socket is closed. Each OPEN on a link is put to `onOpen`.

import { regionPool, type Placement } from '../common/region-pool.js';
import { CHUNK0_BYTES } from '../common/link-layout.js';
import { Link, type OpenDecision, type OpenRequest } from '../common/link.js';
import { bindPort, closePort, openPort } from './events.js';
import { HostLinkPlatform } from './link-platform.js';
import { DEFAULT_MAX_CAPACITY, pollWhileSettingUp, resolveOptions, type HostChannelOptions } from './limits.js';
import { EphemeralPorts } from '../../socket/identity.js';
import type { ChannelEnd } from '../types.js';
import { closeReceived, nativeAddon } from './native.js';
import type { CtlListener, CtlSocket } from './native-api.js';
import { decode, encode, MessageType, ProtocolError, type RefuseReason } from './protocol.js';
import { CtlLifeline, LinkMemoryReceiver, ThreadsLinkPlatform } from './same-process.js';

export interface HostListener {
  readonly path: string;
  /** Stops taking new links; links already up stay until their clients close them. */
  close(): void;
  ref(): void;
  unref(): void;
}

export interface HostListenOptions extends HostChannelOptions {
  /** A client was refused (malformed hello, limits, timeout…); for logs and tests. */
  onRefused?: (reason: RefuseReason, message: string) => void;
  /** Why a client with these credentials (SO_PEERCRED) may not link, or null. Default: anyone but
   *  this process's own user is refused. */
  admitPeer?: (cred: { pid: number; uid: number; gid: number; groups: number[] }) => string | null;
  /** A link is up (before its first OPEN is read): the listeners may tell it about themselves. */
  onLink?: (link: Link) => void;
}

const ownUserOnly = (cred: { uid: number }) =>
  cred.uid === process.geteuid?.() ? null : `uid ${cred.uid} is not this server's user (uid ${process.geteuid?.()})`;

/** Listens on `path` (a Unix socket, created owner-only) for links; every OPEN on them goes to
 *  `onOpen`. */
export function listenHost(path: string, options: HostListenOptions, onOpen: (request: OpenRequest, link: Link) => OpenDecision): HostListener {
  const native = nativeAddon();
  const limits = resolveOptions(options);
  let pending = 0;
  // Open from the start: a BroadcastChannel delivers only to channels open when a memory is posted.
  let receiver: LinkMemoryReceiver | null = new LinkMemoryReceiver(path);

  const listener: CtlListener = native.ctlListen(path, (fd) => {
    pending++;
    let stage: 'hello' | 'threads' | 'done' = 'hello';
    let made: { regionFd: number; chunk0?: Placement; port?: number } | undefined;
    let link: Link | undefined;
    let lifeline: CtlLifeline | undefined;
    let unwait: (() => void) | null = null;

    const release = () => {
      unwait?.();
      unwait = null;
      if (!made) return;
      if (made.port !== undefined) closePort(made.port);
      if (made.chunk0) {
        const pool = regionPool();
        native.segmentUnmap(pool.view(made.chunk0.memory), made.chunk0.offset, CHUNK0_BYTES);
        pool.release(made.chunk0, CHUNK0_BYTES);
      }
      native.closeFd(made.regionFd);
      made = undefined;
    };
    const leaveSetup = () => {
      const wasInSetup = stage !== 'done';
      if (wasInSetup) {
        stage = 'done';
        pending--;
        clearTimeout(timer);
      }
      return wasInSetup;
    };
    const refuse = (reason: RefuseReason, message: string) => {
      if (!leaveSetup()) return;
      try {
        ctl.send(encode({ type: MessageType.Refuse, reason, text: message }));
      } catch { /* the client may already be gone */ }
      ctl.close();
      release();
      options.onRefused?.(reason, message);
    };
    const timer = setTimeout(() => refuse('malformed', `set-up not finished within ${limits.setupTimeoutMs} ms`), limits.setupTimeoutMs);
    const established = (l: Link) => {
      link = l;
      made = undefined;
      leaveSetup();
      l.onOpen = (request) => onOpen(request, l);
    };

    const onLink = (pid: number, chunk0Bytes: number, regionFd: number, clientEventFd: number, took: () => void, place: { netns: string; container: string }) => {
      made = { regionFd }; // released with the rest if anything below refuses
      if (pending > limits.maxPending) throw new ProtocolError('busy', `more than ${limits.maxPending} set-ups in progress`);
      if (chunk0Bytes !== CHUNK0_BYTES) throw new ProtocolError('malformed', `chunk 0 of ${chunk0Bytes} bytes, expected ${CHUNK0_BYTES}`);
      const pool = regionPool();
      const chunk0 = pool.allocate(CHUNK0_BYTES);
      try {
        // The addon checks the memfd: sealed against shrinking, and large enough.
        native.segmentMap(pool.view(chunk0.memory), chunk0.offset, CHUNK0_BYTES, regionFd, 0);
      } catch (err) {
        pool.release(chunk0, CHUNK0_BYTES);
        throw new ProtocolError('malformed', `the region cannot be mapped: ${(err as Error).message}`);
      }
      made.chunk0 = chunk0;
      let l: Link | undefined;
      const { port, fd: eventFd } = openPort(() => l?.doorbell());
      made.port = port;
      bindPort(port, clientEventFd);
      took(); // the port owns the client's eventfd from here
      const platform = new HostLinkPlatform({ regionFd, chunk0: { ...chunk0, bytes: CHUNK0_BYTES }, port, ctl, pid, maxBytes: limits.linkBytes, place });
      try {
        l = new Link('acceptor', platform); // checks the header the client wrote
      } catch (err) {
        throw new ProtocolError('malformed', (err as Error).message);
      }
      options.onLink?.(l); // before LINK_ACCEPT: what it writes is there when the client starts
      ctl.send(encode({ type: MessageType.LinkAccept }), [eventFd]);
      established(l);
      l.doorbell(); // OPENs may be waiting already
    };

    const onLinkThreads = (pid: number, threadId: number, token: string) => {
      if (pid !== process.pid) throw new ProtocolError('malformed', `a threads link is only for this process, not for process ${pid}`);
      if (!receiver) throw new ProtocolError('internal', 'the listener is closing');
      stage = 'threads';
      unwait = receiver.when(token, (memory) => {
        unwait = null;
        if (stage !== 'threads') return;
        try {
          lifeline = new CtlLifeline(ctl);
          const platform = new ThreadsLinkPlatform(memory, lifeline, { pid, threadId }, limits.linkBytes);
          const l = new Link('acceptor', platform);
          platform.ondoorbell = () => l.doorbell();
          lifeline.onlost = () => l.lost('the peer thread went away');
          options.onLink?.(l);
          ctl.send(encode({ type: MessageType.LinkAcceptThreads }));
          established(l);
          l.doorbell();
        } catch (err) {
          lifeline = undefined;
          refuse('malformed', (err as Error).message);
        }
      });
    };

    let pid = 0;
    let denied: string | null = null;
    const ctl: CtlSocket = new native.CtlSocket(fd, (data, fds) => {
      let owned = fds; // descriptors we still have to close if this message is refused
      try {
        if (denied !== null) throw new ProtocolError('denied', denied);
        if (stage !== 'hello') throw new ProtocolError('malformed', 'control message after set-up');
        const message = decode(data, fds.length);
        pid = ctl.peerCredentials().pid; // the kernel's word, not the hello's
        if (message.type === MessageType.Link) {
          owned = [fds[1]]; // the region is `made`'s from here
          onLink(pid, message.chunk0, fds[0], fds[1], () => (owned = []), message.place);
        } else if (message.type === MessageType.LinkThreads) {
          onLinkThreads(pid, message.threadId, message.token);
          pollWhileSettingUp(ctl, () => stage === 'done');
        } else {
          throw new ProtocolError('malformed', `unexpected message type ${message.type} during set-up`);
        }
      } catch (err) {
        closeReceived(owned);
        if (link) (lifeline ? lifeline.controlClosed() : link.lost('the client spoke out of turn on the control socket'));
        else refuse(err instanceof ProtocolError ? err.reason : 'internal', (err as Error).message);
      }
    }, (code) => {
      const why = `the client closed the control socket (${code ?? 'EOF'})`;
      if (link) (lifeline ? lifeline.controlClosed() : link.lost(why));
      else refuse('malformed', `client went away during set-up (${code ?? 'EOF'})`);
    });
    // Who it is, as the kernel says (mapped into our user namespace): a client that may not link is
    // told so when it speaks, and keeps nothing of ours.
    try {
      denied = (options.admitPeer ?? ownUserOnly)(ctl.peerCredentials());
    } catch (err) {
      denied = `its credentials cannot be read (${(err as Error).message})`;
    }
  });

  return {
    path,
    close: () => {
      listener.close();
      receiver?.close();
      receiver = null;
    },
    ref: () => listener.ref(),
    unref: () => listener.unref(),
  };
}

/** A listener used on its own (tools, tests): every connection, whatever port it asks for, goes to
 *  `onChannel`, with a port from one EphemeralPorts. */
export function listenHostChannels(path: string, options: HostListenOptions, onChannel: (end: ChannelEnd) => void): HostListener {
  const ports = new EphemeralPorts();
  const maxCapacity = options.maxCapacity ?? DEFAULT_MAX_CAPACITY;
  return listenHost(path, options, (request): OpenDecision => {
    if (request.clientPort !== 0) return { refuse: 'malformed', why: 'this listener grants no ports' };
    let port: number;
    try {
      port = ports.allocate();
    } catch (err) {
      return { refuse: 'limit', why: (err as Error).message };
    }
    return { port, maxCapacity, take: onChannel, release: () => ports.release(port) };
  });
}
