// How Xen channels are found and set up through XenStore (the libxenvchan pattern: one side shares
// pages, the other maps them; here the *client* shares and the server maps, because only the
// server's domain id is known in advance, and a grant names the one domain that may map it).
//
//   /local/domain/<S>/data/xway/<port>/         the endpoint, written by the server (domain S)
//     version = "1", domid = "<S>", max-capacity = "<bytes>"        perms: server-owned, readable
//     offers/                                                       perms: others may create
//       <C>-<nonce>/                            one offer, written by the client (domain C) in
//         capacity-a, capacity-b, pages,        one transaction, owned by C, readable and
//         event-port, grefs/<i> ("r,r,…"),      writable by S only
//         target, source (the route: addresses
//         connected to and from),
//         state = "offered"                     S writes "accepted:<port>" (the connection's
//                                               ephemeral port) or "refused:<reason> <text>"
//   /local/xway/hosts/<address>  = "<domid>"    the address map, written by dom0's administrator
//                                               (scripts/xen-permit.sh), read by the switch
//
// Everything in an offer is written by the peer, so everything is checked here before use: the
// client's domain id comes from XenStore's ownership record of the offer node, never from its
// contents; numbers must be canonical decimal integers in range; the grant list must have exactly
// the page count the capacities imply.

import net from 'node:net';
import { isValidCapacity, channelByteLength } from '../../ring/layout.js';
import type { Route } from '../../socket/identity.js';
import { ProtocolError } from '../host/protocol.js';
import type { XenStore } from './native-api.js';

export const XS_VERSION = '1';
const XEN_PAGE = 4096;
/** Grant references per XenStore node (values hold at most 4096 bytes; 256 × "4294967295," fits). */
export const GREFS_PER_NODE = 256;
export const MAX_DOMID = 0x7fef;

export function endpointPath(domid: number, port: number): string {
  return `/local/domain/${domid}/data/xway/${port}`;
}

export const HOSTS_PATH = '/local/xway/hosts';

/** An address as a XenStore node name (names allow only [A-Za-z0-9_@/-]): dots become '-',
 *  colons '_'. */
export function addressKey(address: string): string {
  const key = address.toLowerCase().replace(/\./g, '-').replace(/:/g, '_');
  if (!/^[a-z0-9_-]{1,64}$/.test(key)) throw new ProtocolError('malformed', `${JSON.stringify(address)} is not an IP address`);
  return key;
}

/** Bytes granted for a channel: the channel plus two liveness bytes, in whole 4 KiB pages. */
export function grantBytes(capacityA: number, capacityB: number): number {
  return Math.ceil((channelByteLength(capacityA, capacityB) + 64) / XEN_PAGE) * XEN_PAGE;
}

/** Offsets (from the channel's start) of the bytes that say "the initiator / acceptor still maps
 *  these pages": each side sets its own to 1, and the kernel clears it (gntalloc / gntdev unmap
 *  notification) when that side's mapping goes away, however it goes away. */
export function aliveOffsets(size: number): { initiator: number; acceptor: number } {
  return { initiator: size - 64, acceptor: size - 63 };
}

/** A canonical non-negative decimal integer in [min, max], or a ProtocolError. */
export function parseInteger(value: string | null, what: string, min: number, max: number): number {
  if (value === null || !/^(0|[1-9][0-9]{0,9})$/.test(value)) {
    throw new ProtocolError('malformed', `${what} is ${value === null ? 'missing' : JSON.stringify(value.slice(0, 40))}, not a decimal integer`);
  }
  const n = Number(value);
  if (n < min || n > max) throw new ProtocolError('malformed', `${what} ${n} is out of range ${min}..${max}`);
  return n;
}

/** The owner of a node, from its permissions (entry 0). */
export function ownerOf(xs: XenStore, path: string): number | null {
  const perms = xs.getPermissions(path);
  if (!perms || perms.length === 0) return null;
  return parseInteger(perms[0].slice(1), `owner of ${path}`, 0, MAX_DOMID);
}

export interface Offer {
  client: number;
  capacityA: number;
  capacityB: number;
  size: number;
  eventPort: number;
  grefs: number[];
  route: Route;
}

/** Reads and checks an offer. `client` is the domain XenStore says created it. */
export function readOffer(xs: XenStore, path: string, client: number, maxCapacity: number): Offer {
  const caps = ['capacity-a', 'capacity-b'].map((k) => {
    const cap = parseInteger(xs.read(`${path}/${k}`), k, 0, 2 ** 31);
    if (!isValidCapacity(cap) || cap > maxCapacity) {
      throw new ProtocolError('capacity', `ring capacity ${cap} is not a power of two from 4096 to ${maxCapacity}`);
    }
    return cap;
  });
  const [capacityA, capacityB] = caps;
  const size = grantBytes(capacityA, capacityB);
  const pages = parseInteger(xs.read(`${path}/pages`), 'pages', 1, size / XEN_PAGE);
  if (pages !== size / XEN_PAGE) throw new ProtocolError('malformed', `${pages} pages offered, the capacities need ${size / XEN_PAGE}`);
  const eventPort = parseInteger(xs.read(`${path}/event-port`), 'event-port', 1, 2 ** 31 - 1);
  const grefs: number[] = [];
  for (let i = 0; grefs.length < pages; i++) {
    const chunk = xs.read(`${path}/grefs/${i}`);
    if (chunk === null) throw new ProtocolError('malformed', `grefs/${i} is missing (${grefs.length} of ${pages} references)`);
    const parts = chunk.split(',');
    if (parts.length > GREFS_PER_NODE || grefs.length + parts.length > pages) {
      throw new ProtocolError('malformed', `grefs/${i} holds more references than offered pages`);
    }
    for (const p of parts) grefs.push(parseInteger(p, `grefs/${i} entry`, 0, 2 ** 32 - 1));
  }
  const address = (key: string) => {
    const value = xs.read(`${path}/${key}`);
    if (value === null || value.length > 45 || !net.isIP(value)) {
      throw new ProtocolError('malformed', `${key} is ${value === null ? 'missing' : JSON.stringify(value.slice(0, 40))}, not an IP address`);
    }
    return value;
  };
  return { client, capacityA, capacityB, size, eventPort, grefs, route: { target: address('target'), source: address('source') } };
}

/** The nodes of an offer, for one XenStore transaction; every node readable and writable by the
 *  server `server` only (the client owns them). */
export function offerEntries(path: string, client: number, server: number, o: Omit<Offer, 'client'>): [string, string | null, string[]][] {
  const perms = client === server ? [`n${client}`] : [`n${client}`, `b${server}`];
  const entries: [string, string | null, string[]][] = [
    [path, '', perms],
    [`${path}/capacity-a`, String(o.capacityA), perms],
    [`${path}/capacity-b`, String(o.capacityB), perms],
    [`${path}/pages`, String(o.size / XEN_PAGE), perms],
    [`${path}/event-port`, String(o.eventPort), perms],
    [`${path}/target`, o.route.target, perms],
    [`${path}/source`, o.route.source, perms],
  ];
  for (let i = 0; i * GREFS_PER_NODE < o.grefs.length; i++) {
    entries.push([`${path}/grefs/${i}`, o.grefs.slice(i * GREFS_PER_NODE, (i + 1) * GREFS_PER_NODE).join(','), perms]);
  }
  entries.push([`${path}/state`, 'offered', perms]); // last: the server waits for it
  return entries;
}

export interface XenEndpoint {
  domid: number;
  port: number;
  maxCapacity: number;
  path: string;
}

/** Reads an endpoint's record; null when there is none (or it is not ours to read). */
export function readEndpoint(xs: XenStore, domid: number, port: number): XenEndpoint | null {
  const path = endpointPath(domid, port);
  let version: string | null;
  try {
    version = xs.read(`${path}/version`);
  } catch (err) {
    if ((err as { code?: string }).code === 'EACCES') return null;
    throw err;
  }
  if (version === null) return null;
  if (version !== XS_VERSION) throw new ProtocolError('version', `endpoint ${path} speaks version ${JSON.stringify(version.slice(0, 20))}, not ${XS_VERSION}`);
  const recorded = parseInteger(xs.read(`${path}/domid`), 'endpoint domid', 0, MAX_DOMID);
  if (recorded !== domid) throw new ProtocolError('malformed', `endpoint ${path} names domain ${recorded}`);
  const maxCapacity = parseInteger(xs.read(`${path}/max-capacity`), 'max-capacity', 4096, 2 ** 31);
  return { domid, port, maxCapacity, path };
}
