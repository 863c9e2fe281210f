// The connecting side of host links (see protocol.ts for the set-up exchange). A thread keeps one
// link per server thread, made on the first connection to it and shared by the rest; a connection
// is then only a slot on it (platform/common/link.ts). Set-up releases every mapping, port and
// descriptor it made when it fails.

import { threadId } from 'node:worker_threads';
import { XwayError } from '../../errors.js';
import { regionPool } from '../common/region-pool.js';
import { CHUNK0_BYTES } from '../common/link-layout.js';
import { Link, type LinkChannelEnd } from '../common/link.js';
import type { Route } from '../../socket/identity.js';
import { bindPort, closePort, openPort } from './events.js';
import { HostLinkPlatform } from './link-platform.js';
import { pollWhileSettingUp, resolveOptions, type HostChannelOptions } from './limits.js';
import { closeReceived, nativeAddon } from './native.js';
import type { CtlSocket } from './native-api.js';
import { decode, encode, MessageType, ProtocolError } from './protocol.js';
import { CtlLifeline, postLinkMemory, ThreadsLinkPlatform } from './same-process.js';

export class SetupError extends XwayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_XWAY_SETUP', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export interface HostConnectOptions extends HostChannelOptions {
  /** The listener is in this process: ask for a threads link (see same-process.ts). */
  sameProcess?: boolean;
  /** The address connected to and the one connected from. Default: loopback. */
  route?: Route;
  /** The listening port the connection is for. */
  port?: number;
  /** Why the server that answered (its credentials, SO_PEERCRED) must not be trusted, or null:
   *  asked before anything of ours is passed to it. Default: it must be this process's user. */
  trustPeer?: (cred: { pid: number; uid: number; gid: number; groups: number[] }) => string | null;
  /** Where this process lives (network namespace, container name), told to the server for its
   *  observers (xway stat). */
  place?: { netns: string; container: string };
  /** Called with the end as soon as its channel is laid out, before the server accepts: what is
   *  written to it then reaches the server with the OPEN (accept overlaps the first data). */
  onLaidOut?: (end: LinkChannelEnd) => void;
}

/** This thread's links, by the control socket of the thread they lead to; and those set up. */
const links = new Map<string, Promise<Link>>();
const ready = new Map<string, Link>();

/** Whether this thread has a link up to the server thread at `path`, and its table says that
 *  thread listens on `port`: as good as the registry's word, and cheaper to ask. */
export function linkListens(path: string, port: number): boolean {
  return ready.get(path)?.listens(port) ?? false;
}

/** The link to the server thread listening at `path`, made if there is none. */
export function linkTo(path: string, options: HostConnectOptions = {}): Promise<Link> {
  let link = links.get(path);
  if (!link) {
    link = setUpLink(path, options);
    links.set(path, link);
    const forget = () => {
      if (links.get(path) === link) links.delete(path);
      if (ready.get(path)?.closed !== false) ready.delete(path);
    };
    link.then((l) => {
      if (l.closed) return forget();
      ready.set(path, l);
      l.onclose = forget;
    }, forget);
  }
  return link;
}

/** This thread's link to the server thread at `path`, if it is up: a connect on it can be opened
 *  at once (openNow), without a promise. */
export function readyLink(path: string): Link | null {
  const link = ready.get(path);
  return link && !link.closed ? link : null;
}

/**
 * Opens a connection to listening port `options.port` of the server thread at `path`. Resolves with
 * the end once the server accepted it (`end.connection.port` is its ephemeral port) — or at once,
 * with `end.early` set, when the server granted this link a port for it (see Link.open); rejects
 * with a typed error when the link cannot be had or the server refuses.
 */
export async function connectHost(path: string, options: HostConnectOptions = {}): Promise<LinkChannelEnd> {
  const limits = resolveOptions(options);
  const link = await linkTo(path, options);
  return openOnLink(link, options.port ?? 0, limits.capacity, options.route ?? { target: '127.0.0.1', source: '127.0.0.1' }, limits.setupTimeoutMs, options.onLaidOut);
}

/**
 * Opens a connection to listening `port` on `link` (host, threads or Xen) and resolves with its end
 * once the acceptor took it — within `setupTimeoutMs`, else a SetupError and the end closed — or at
 * once when the link holds a port granted for it. `onLaidOut` sees the end as soon as its channel
 * exists (accept overlaps the first data).
 */
export async function openOnLink(link: Link, port: number, capacity: number, route: Route, setupTimeoutMs: number, onLaidOut?: (end: LinkChannelEnd) => void): Promise<LinkChannelEnd> {
  const opened = openNow(link, port, capacity, route, onLaidOut);
  return opened.accepted === null ? opened.end : acceptedWithin(opened, setupTimeoutMs);
}

export interface OpenedNow {
  end: LinkChannelEnd;
  /** Null when the connection is connected at once (a port the link was granted). */
  accepted: Promise<number> | null;
}

/** openOnLink's synchronous part: lays the connection out on `link` and sends its OPEN. Throws
 *  the typed error a refusal of the link itself is (closed, out of slots or memory). */
export function openNow(link: Link, port: number, capacity: number, route: Route, onLaidOut?: (end: LinkChannelEnd) => void): OpenedNow {
  if (link.closed) throw new SetupError('the link closed before the connection could be opened');
  let opened: ReturnType<Link['open']>;
  try {
    opened = link.open(port, capacity, capacity, route);
  } catch (err) {
    throw err instanceof XwayError ? err : new SetupError(`ring set-up failed: ${(err as Error).message}`, { cause: err });
  }
  onLaidOut?.(opened.end);
  // Connected at once (a granted port, a listener open in the link's table): the caller emits
  // 'connect' and then lets the OPEN wake the server (flushOwed), with what 'connect' wrote.
  // Should it not, the OPEN still goes, a turn later.
  if (opened.accepted === null) link.flushOwedLater();
  return opened;
}

/** The end of `opened` once the acceptor took it, within `setupTimeoutMs` (else a SetupError and
 *  the end closed). */
export async function acceptedWithin(opened: OpenedNow, setupTimeoutMs: number): Promise<LinkChannelEnd> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SetupError(`the server did not answer within ${setupTimeoutMs} ms`)), setupTimeoutMs);
    timer.unref(); // the link holds the loop while the connection is open
  });
  try {
    await Promise.race([opened.accepted, timeout]);
  } catch (err) {
    opened.end.close();
    throw err instanceof XwayError ? err : new SetupError(`ring set-up failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  return opened.end;
}

/** Makes a link to the server thread at `path`: a host link, or a threads link in this process. */
function setUpLink(path: string, options: HostConnectOptions): Promise<Link> {
  const native = nativeAddon();
  const limits = resolveOptions(options);
  const sameProcess = options.sameProcess === true;

  return new Promise<Link>((resolve, reject) => {
    let made: { regionFd: number; chunk0?: ReturnType<ReturnType<typeof regionPool>['allocate']>; port?: number } | undefined;
    let link: Link | undefined;
    let lifeline: CtlLifeline | undefined;
    let settled = false;

    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctl.close();
      if (made) {
        if (made.port !== undefined) closePort(made.port);
        if (made.chunk0) {
          const pool = regionPool();
          native.segmentUnmap(pool.view(made.chunk0.memory), made.chunk0.offset, CHUNK0_BYTES);
          pool.release(made.chunk0, CHUNK0_BYTES);
        }
        native.closeFd(made.regionFd);
        made = undefined;
      }
      reject(err instanceof XwayError ? err : new SetupError(`link set-up failed: ${err.message}`, { cause: err }));
    };
    const done = (l: Link) => {
      settled = true;
      clearTimeout(timer);
      made = undefined;
      link = l;
      resolve(l);
    };

    let fd: number;
    fd = native.ctlConnect(path);
    let peerPid = 0;
    const ctl: CtlSocket = new native.CtlSocket(fd, (data, fds) => {
      let owned = fds;
      try {
        if (link || settled) throw new ProtocolError('malformed', 'control message after set-up');
        const message = decode(data, fds.length);
        if (message.type === MessageType.Refuse) throw new SetupError(`the listener refused the link (${message.reason}): ${message.text}`);
        if (sameProcess && message.type === MessageType.LinkAcceptThreads) {
          done(threadsLink!);
          return;
        }
        if (message.type !== MessageType.LinkAccept || !made?.chunk0) throw new ProtocolError('malformed', `unexpected message type ${message.type}`);
        bindPort(made.port!, fds[0]);
        owned = [];
        done(hostLink!);
      } catch (err) {
        closeReceived(owned);
        if (link) link.lost('the server spoke out of turn on the control socket');
        else fail(err as Error);
      }
    }, (code) => {
      const why = `the server closed the control socket (${code ?? 'EOF'})`;
      if (link) (lifeline ? lifeline.controlClosed() : link.lost(why));
      else fail(new SetupError(`${why} during set-up`));
    });
    const cred = ctl.peerCredentials();
    peerPid = cred.pid;
    const distrust = (options.trustPeer ?? ((c: { uid: number }) => (c.uid === process.geteuid?.() ? null : `the server runs as uid ${c.uid}, not as this user`)))(cred);
    if (distrust !== null) {
      ctl.close();
      reject(new SetupError(`the server is not trusted: ${distrust}`));
      return;
    }
    const timer = setTimeout(() => fail(new SetupError(`link set-up not finished within ${limits.setupTimeoutMs} ms`)), limits.setupTimeoutMs);

    let hostLink: Link | undefined;
    let threadsLink: Link | undefined;
    try {
      if (sameProcess) {
        lifeline = new CtlLifeline(ctl);
        const memory = ThreadsLinkPlatform.createMemory();
        const platform = new ThreadsLinkPlatform(memory, lifeline, { pid: peerPid }, limits.linkBytes);
        threadsLink = new Link('initiator', platform);
        const l = threadsLink;
        platform.ondoorbell = () => l.doorbell();
        lifeline.onlost = () => l.lost('the peer thread went away');
        const token = postLinkMemory(path, memory);
        ctl.send(encode({ type: MessageType.LinkThreads, pid: process.pid, threadId, token }));
      } else {
        const regionFd = native.regionCreate(CHUNK0_BYTES);
        made = { regionFd };
        const pool = regionPool();
        const chunk0 = pool.allocate(CHUNK0_BYTES);
        native.segmentMap(pool.view(chunk0.memory), chunk0.offset, CHUNK0_BYTES, regionFd, 0);
        made.chunk0 = chunk0;
        const { port, fd: eventFd } = openPort(() => hostLink?.doorbell());
        made.port = port;
        const platform = new HostLinkPlatform({ regionFd, chunk0: { ...chunk0, bytes: CHUNK0_BYTES }, port, ctl, pid: peerPid, maxBytes: limits.linkBytes });
        hostLink = new Link('initiator', platform);
        ctl.send(encode({ type: MessageType.Link, pid: process.pid, chunk0: CHUNK0_BYTES, place: options.place ?? { netns: '', container: '' } }), [regionFd, eventFd]);
      }
    } catch (err) {
      fail(err as Error);
      return;
    }
    pollWhileSettingUp(ctl, () => settled);
  });
}
