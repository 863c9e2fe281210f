// The ring side of a TCP listener, shared by XwayServer and the xway/register preload. Once a
// net.Server listens on a TCP port, a registry entry points co-resident clients to this thread's
// link listener (one for every port the thread serves; and a Xen endpoint, where Xen is there);
// each connection opened on a link for that port becomes a RingSocket handed to the server exactly
// as net hands it an accepted TCP connection (net's onconnection): counted in `_connections`, so
// maxConnections, 'drop', getConnections() and close() — which waits for open connections — treat
// ring and TCP connections alike.

import net from 'node:net';
import type { ChannelEnd } from '../platform/types.js';
import { listenHost, type HostListener } from '../platform/host/listen.js';
import { DEFAULT_MAX_CAPACITY } from '../platform/host/limits.js';
import { Link, LinkChannelEnd, type OpenDecision, type OpenRequest } from '../platform/common/link.js';
import { publishChannel, publishCopiedChannel } from '../stat/publish.js';
import { XenChannelEnd } from '../platform/xen/channel-end.js';
import { hostUnavailableReason } from '../platform/host/native.js';
import { registerEndpoint, shareControlSocket, threadControlPath, type Registration } from '../switch/registry.js';
import { peerRefusal } from '../switch/sharing.js';
import { RingSocket } from './ring-socket.js';
import { listenXen, type XenListener } from '../platform/xen/listen.js';
import { xenUnavailableReason } from '../platform/xen/native.js';
import { debug, debugOn, hostPort } from '../switch/debug.js';
import { isLocalHost } from '../switch/policy.js';
import { EphemeralPorts, routeTo, routeToward, effectiveTarget, serverView, servesHost, type ConnectionView, type Route } from './identity.js';
import { selfDomid } from '../platform/xen/store.js';
import { PortGrants } from './port-grants.js';

/** A net.Server carrying this symbol (set to true) is left alone by the xway/register preload. */
export const kNoRegister: unique symbol = Symbol.for('xway.noRegister') as never;
const kEndpoint = Symbol('xway.endpoint');
const kUnref = Symbol('xway.unref');
const kTlsView = Symbol('xway.tlsView');

export interface RingEndpointOptions {
  /** Ring capacity clients use unless they ask for another (published in the entry). */
  ringCapacity?: number;
  /** Ring capacity granted to clients at most. */
  maxRingCapacity?: number;
  /** Ring memory one link (one client thread) may use; the first server of a thread to open its
   *  endpoint sets it for the thread's listener. Default XWAY_RING_MEMORY_PER_LINK, else 8 GiB. */
  ringMemoryPerLink?: number;
}

interface RingEndpoint {
  close(): void;
  ref(): void;
  unref(): void;
}

interface ServerInternals extends net.Server {
  [kEndpoint]?: RingEndpoint | null;
  [kUnref]?: boolean;
  [kTlsView]?: boolean;
  _connections: number;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  highWaterMark?: number;
}

/** Why this process cannot serve rings at all (no host platform), or null. */
export function ringUnavailableReason(): string | null {
  return hostUnavailableReason();
}

/** A port this thread serves over rings. */
interface Served {
  server: ServerInternals;
  address: net.AddressInfo;
  ports: EphemeralPorts;
  maxCapacity: number;
  refd: boolean;
  /** This listener's number in the links' listener tables (never 0), and its ports granted to links. */
  epoch: number;
  grants: PortGrants;
}

/** This thread's served ports, and the link listener they share. */
const served = new Map<number, Served>();
let links: HostListener | null = null;
/** The links that have opened connections to this thread: their listener tables show `served`. */
const linksSeen = new Set<Link>();
let lastEpoch = 0;

function nextEpoch(): number {
  lastEpoch = (lastEpoch % 65535) + 1;
  return lastEpoch;
}

/** A link's first OPEN: from now on its listener table follows this thread's listeners. */
function know(link: Link): void {
  if (linksSeen.has(link)) return;
  linksSeen.add(link);
  for (const s of served.values()) link.setListener(s.address.port, s.epoch);
  const onclose = link.onclose;
  link.onclose = () => {
    onclose?.();
    linksSeen.delete(link);
    for (const s of served.values()) s.grants.drop(link);
  };
}

/** A new link: it learns our listeners, with ports for each, so that even its first connection to
 *  one of them need not wait for us. */
function welcome(link: Link): void {
  know(link);
  for (const s of served.values()) s.grants.refill(link, false);
}

/** What a link's OPEN for `request.port` gets: the server's answer, as TCP's listen queue gives it. */
function decide(request: OpenRequest, link: Link): OpenDecision {
  const s = served.get(request.port);
  if (!s) return { refuse: 'not-listening', why: `nothing listens on port ${request.port} here` };
  const why = admits(s.address, request.route);
  if (why !== null) return { refuse: 'malformed', why };
  know(link);
  let port: number;
  if (request.clientPort !== 0) {
    // Connected already, with a port we granted this link (a stale or foreign one is refused,
    // which the client takes as a reset: a connection this listener never queued).
    if (!s.grants.take(link, request.clientPort)) return { refuse: 'malformed', why: `port ${request.clientPort} was not granted to this link` };
    port = request.clientPort;
  } else {
    try {
      port = s.ports.allocate();
    } catch (err) {
      return { refuse: 'limit', why: (err as Error).message };
    }
  }
  return {
    port,
    maxCapacity: s.maxCapacity,
    take: (end) => {
      acceptRing(s.server, end, s.address);
      if (served.get(request.port) === s) s.grants.refill(link, request.clientPort === 0);
    },
    release: () => s.ports.release(port),
  };
}

/** The link listener holds the event loop while any server it serves is ref'd, as each TCP
 *  listener does. */
function refLinks(): void {
  if (!links) return;
  if ([...served.values()].some((s) => s.refd)) links.ref();
  else links.unref();
}

/**
 * Opens `server`'s ring endpoint (call it when the server has started listening on a TCP port).
 * Throws, with nothing left open, when it cannot be registered: the server then serves TCP only.
 * Returns false when there is nothing to open (a pipe, or a server that stopped meanwhile).
 */
export function openRingEndpoint(server: net.Server, options: RingEndpointOptions = {}): boolean {
  const s = server as ServerInternals;
  const address = server.address();
  if (!address || typeof address !== 'object' || s[kEndpoint] || !server.listening) return false;
  if (served.has(address.port)) throw new Error(`port ${address.port} is served already in this thread`);
  const controlPath = threadControlPath();
  const opened = links === null;
  if (!links) {
    links = listenHost(controlPath, { linkBytes: options.ringMemoryPerLink, admitPeer: peerRefusal, onLink: welcome }, decide);
    try {
      shareControlSocket(controlPath); // owner-only unless XWAY_ALLOW_GROUP / XWAY_ALLOW_UIDS
    } catch (err) {
      links.close();
      links = null;
      throw err;
    }
  }
  const ports = new EphemeralPorts();
  const maxCapacity = options.maxRingCapacity ?? DEFAULT_MAX_CAPACITY;
  const epoch = nextEpoch();
  const entry: Served = { server: s, address, ports, maxCapacity, refd: !s[kUnref], epoch, grants: new PortGrants(ports, address.port, epoch, maxCapacity) };
  let registration: Registration;
  try {
    registration = registerEndpoint({ port: address.port, host: address.address, controlPath, ringCapacity: options.ringCapacity });
  } catch (err) {
    if (opened && served.size === 0) {
      links.close();
      links = null;
    }
    throw err;
  }
  served.set(address.port, entry);
  for (const link of linksSeen) {
    link.setListener(address.port, epoch);
    entry.grants.refill(link, false);
  }
  refLinks();
  // Clients in other Xen domains of this machine find the same server through XenStore. Where Xen
  // is absent, or the endpoint cannot be published, host clients are still served.
  let xen: XenListener | null = null;
  if (xenUnavailableReason() === null) {
    try {
      const self = selfDomid();
      xen = listenXen(address.port, { maxCapacity: options.maxRingCapacity, ports: entry.ports, admit: (route, client) => admitsXen(address, route, client, self) }, (end) => acceptRing(s, end, address));
    } catch { /* no Xen endpoint: other domains use TCP */ }
  }
  s[kEndpoint] = {
    close() {
      registration.close();
      if (served.get(address.port) === entry) {
        served.delete(address.port);
        // At once, as close() closes a listening socket: a client's next connect sees no listener.
        for (const link of linksSeen) link.setListener(address.port, 0);
        entry.grants.close();
      }
      if (served.size === 0 && links) {
        links.close(); // links already up stay until their clients close them
        links = null;
      } else {
        refLinks();
      }
      xen?.close();
    },
    ref: () => { entry.refd = true; refLinks(); xen?.ref(); },
    unref: () => { entry.refd = false; refLinks(); xen?.unref(); },
  };
  if (s[kUnref]) s[kEndpoint]!.unref();
  return true;
}

/** Withdraws the endpoint (server.close()); open ring connections stay until they close. */
export function closeRingEndpoint(server: net.Server): void {
  const s = server as ServerInternals;
  const endpoint = s[kEndpoint];
  s[kEndpoint] = null;
  endpoint?.close();
}

/** server.ref() / unref() apply to the endpoint too (remembered for one opened later). */
export function refRingEndpoint(server: net.Server, ref: boolean): void {
  const s = server as ServerInternals;
  s[kUnref] = !ref;
  if (ref) s[kEndpoint]?.ref();
  else s[kEndpoint]?.unref();
}

/** Why a listener bound to `address` does not serve the route's target, or null (both rules). */
function notServed(address: net.AddressInfo, route: Route): string | null {
  return servesHost(address.address, route.target) ? null : `this listener is bound to ${address.address}, not to ${route.target}`;
}

/** Whether a client's route reaches this listener as a TCP connection would (null) or why not.
 *  A client of our own namespace comes from the source the kernel would pick; one of a neighbouring
 *  namespace (a container sharing the registry) from its own address, which we cannot check: its
 *  user's credentials, checked when the link was made, are what authenticate it. */
function admits(address: net.AddressInfo, route: Route): string | null {
  const unbound = notServed(address, route);
  if (unbound !== null) return unbound;
  const local = routeTo(route.target).source;
  if (route.source !== local && (isLocalHost(route.source) || !net.isIP(route.source))) {
    return `a connection to ${route.target} comes from ${local}, not ${route.source}`;
  }
  return null;
}

/** admits() for a Xen client of domain `client`: the route is the client's claim, made in another
 *  kernel (or in ours, for a client in our own domain), so the source our namespace would pick is
 *  not the test. A client of our domain comes from the source its connect computed — ours on the
 *  network of the target, or the unspecified address when no network of ours leads there (a
 *  recorded address, socket/connect.ts) — or from an address not ours (a neighbouring namespace). A
 *  client of another domain reaches us over the network: not through our loopback, and not from an
 *  address of ours (the unspecified address still says "unknown"). */
function admitsXen(address: net.AddressInfo, route: Route, client: number, self: number): string | null {
  const unbound = notServed(address, route);
  if (unbound !== null) return unbound;
  const unspecified = (a: string) => a === '0.0.0.0' || a === '::';
  if (!net.isIP(route.source)) return `a connection to ${route.target} comes from ${route.source}, not an IP address`;
  if (client === self) {
    const picked = routeToward(route.target)?.source ?? (net.isIPv6(route.target) ? '::' : '0.0.0.0');
    if (route.source !== picked && isLocalHost(route.source)) {
      return `a connection to ${route.target} comes from ${picked}, not ${route.source}`;
    }
    return null;
  }
  const target = effectiveTarget(route.target);
  if (target.startsWith('127.') || target === '::1' || target.startsWith('::ffff:127.')) {
    return `domain ${client} cannot reach ${route.target}: a loopback address of this domain`;
  }
  if (!unspecified(route.source) && isLocalHost(route.source)) return `domain ${client} cannot come from ${route.source}, an address of ours`;
  return null;
}

function dropInfo(view: ConnectionView) {
  return {
    localAddress: view.local.address, localPort: view.local.port, localFamily: view.local.family,
    remoteAddress: view.remote.address, remotePort: view.remote.port, remoteFamily: view.remote.family,
  };
}

/** What net's onconnection does with an accepted handle, for a channel end. */
function acceptRing(server: ServerInternals, end: ChannelEnd, address: net.AddressInfo): void {
  const info = end.connection ?? { port: 0, route: routeTo(address.address) };
  const view = serverView(address, info.route, info.port);
  if (!server[kEndpoint]) {
    end.close();
    return;
  }
  const where = debugOn ? hostPort(address.address, address.port) : '';
  if (server.maxConnections && server._connections >= server.maxConnections) {
    server.emit('drop', dropInfo(view));
    end.close();
    debug(`accept ${where} <- ring dropped (maxConnections ${server.maxConnections})`);
    return;
  }
  const socket = RingSocket.accepted(end, view, {
    allowHalfOpen: server.allowHalfOpen,
    pauseOnCreate: server.pauseOnConnect,
    readableHighWaterMark: server.highWaterMark,
    writableHighWaterMark: server.highWaterMark,
  });
  server._connections++;
  Object.assign(socket, { server, _server: server });
  publish(socket, end, address.port);
  const isTls = typeof (server as unknown as { addContext?: unknown }).addContext === 'function';
  if (isTls && !server[kTlsView]) {
    // A tls.Server wraps the RingSocket in a TLSSocket, whose JS-stream handle knows no addresses:
    // give it the TCP-level view before the program's 'secureConnection' listeners run.
    server[kTlsView] = true;
    server.prependListener('secureConnection', (tlsSocket: net.Socket & { _parent?: unknown }) => {
      const parent = tlsSocket._parent;
      if (parent instanceof RingSocket) tcpView(tlsSocket, parent);
    });
  }
  if (debugOn) {
    debug(`accept ${where} <- ring (${end.platform} channel, pid ${process.pid})`);
    socket.once('close', () => debug(`close ${where} ring connection (pid ${process.pid}, ${socket.bytesRead} bytes in, ${socket.bytesWritten} bytes out)`));
  }
  server.emit('connection', socket);
  // A tls.Server has wrapped the RingSocket in a TLSSocket by now, which copied its allowHalfOpen
  // (the server's): from here the TLSSocket decides when this direction ends, as it does over a
  // TCP handle. The ring below must not end it by itself on the client's FIN, or a response
  // written after the request's end (https with Connection: close) would be lost.
  if (isTls) socket.allowHalfOpen = true;
}

/** A TLSSocket over a RingSocket asks its (JS stream) handle for the addresses and gets nothing:
 *  net caches them in _peername/_sockname, so fill the cache with the ring's view. */
export function tcpView(tlsSocket: net.Socket, ring: net.Socket): void {
  Object.assign(tlsSocket, {
    _peername: { address: ring.remoteAddress, port: ring.remotePort, family: ring.remoteFamily },
    _sockname: { address: ring.localAddress, port: ring.localPort, family: ring.localFamily },
  });
}

/** Lists the connection for observers (xway stat) until it closes. */
function publish(socket: RingSocket, end: ChannelEnd, port: number): void {
  const where = end instanceof LinkChannelEnd ? end.location() : null;
  const unpublish = where !== null
    ? publishChannel({
      port, clientPid: end.peer.pid ?? 0, segmentFd: where.fd, segmentIno: where.ino, fileOffset: where.fileOffset, size: end.channel.byteLength, clientPlace: end.peer,
      capacityA: end.channel.capacityA, capacityB: end.channel.capacityB,
    })
    : end instanceof XenChannelEnd
      ? publishCopiedChannel({
        port, clientDomain: end.peer.domid,
        read: () => [end.channel.rx.stats(), end.channel.tx.stats()], // the acceptor reads ring A
      })
      : null;
  if (unpublish) socket.once('close', unpublish);
}
