// How Xen links are found and set up through XenStore — once per link; connections are then
// OPEN records on the link (platform/common/link.ts). The client's domain shares (the grant names
// the one domain that may map it, and only the server's domain is known in advance), the server's
// maps: libxenvchan's pattern.
//
//   /local/domain/<S>/data/xway/<port>/           an endpoint, written by the server (domain S)
//     version = "2", domid = "<S>",                perms: S's, readable by every domain (or the
//     max-capacity = "<bytes>",                    allowed ones)
//     link = "<key>"                               the listening thread that serves the port
//   /local/domain/<S>/data/xway/links/<key>/      that thread's link listener: S's, nobody else's
//     offers/<C>/                                  one per client domain C, made by S: S's, and
//                                                  writable by C alone — C can create offers in it
//                                                  (or remove it: then only C is hurt, and S puts
//                                                  it back), and no other domain can touch it
//       <tag>/                                     one link offer, written by C in one transaction:
//         pages = "80", grefs/<i> ("r,r,…"),       C's (XenStore records C as the creator),
//         event-port = "<C's unbound port>",       readable and writable by S alone
//         state = "offered"                        S writes "accepted" or "refused:<reason> <text>"
//   /local/xway/hosts/<address> = "<domid>"       the address map, dom0's (scripts/xen-permit.sh)
//
// Everything in an offer is the peer's word, so everything is checked before use: the client's
// domain comes from XenStore's ownership record of the offer (and must be the C its directory is
// for), numbers must be canonical decimal integers in range, the grant list exactly chunk 0's
// page count; the references themselves are checked by the hypervisor when they are mapped.

import { ProtocolError } from '../host/protocol.js';
import type { XenStore } from './native-api.js';
import { XEN_CHUNK0_GRANTS } from './link-layout.js';

export const XS_VERSION = '2';
/** Grant references per XenStore node (values hold at most 4096 bytes; 256 × "4294967295," fits). */
export const GREFS_PER_NODE = 256;
export const MAX_DOMID = 0x7fef;
/** A listener key: what the server thread chose (random hex). */
const KEY = /^[0-9a-f]{8,32}$/;

export function endpointPath(domid: number, port: number): string {
  return `/local/domain/${domid}/data/xway/${port}`;
}

/** The link listener of server thread `key` in domain `domid`. */
export function listenerPath(domid: number, key: string): string {
  return `/local/domain/${domid}/data/xway/links/${key}`;
}

export const HOSTS_PATH = '/local/xway/hosts';

/** An address as a XenStore node name (names allow only [A-Za-z0-9_@/-]): dots become '-',
 *  colons '_'. */
export function addressKey(address: string): string {
  const key = address.toLowerCase().replace(/\./g, '-').replace(/:/g, '_');
  if (!/^[a-z0-9_-]{1,64}$/.test(key)) throw new ProtocolError('malformed', `${JSON.stringify(address)} is not an IP address`);
  return key;
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

export interface LinkOffer {
  eventPort: number;
  grefs: number[];
}

/** Reads and checks a link offer (its creator is the caller's check). */
export function readLinkOffer(xs: XenStore, path: string): LinkOffer {
  const pages = parseInteger(xs.read(`${path}/pages`), 'pages', 1, 2 ** 31);
  if (pages !== XEN_CHUNK0_GRANTS) throw new ProtocolError('malformed', `${pages} pages offered, a link's chunk 0 has ${XEN_CHUNK0_GRANTS}`);
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
  return { eventPort, grefs };
}

/** The nodes of a link offer, for one XenStore transaction: the client's, readable and writable
 *  by the server `server` only. */
export function linkOfferEntries(path: string, client: number, server: number, o: LinkOffer): [string, string | null, string[]][] {
  const perms = client === server ? [`n${client}`] : [`n${client}`, `b${server}`];
  const entries: [string, string | null, string[]][] = [
    [path, '', perms],
    [`${path}/pages`, String(o.grefs.length), perms],
    [`${path}/event-port`, String(o.eventPort), perms],
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
  /** The server thread's link listener. */
  link: string;
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
  const link = xs.read(`${path}/link`);
  if (link === null || !KEY.test(link)) throw new ProtocolError('malformed', `endpoint ${path} names link listener ${JSON.stringify(link?.slice(0, 40) ?? null)}`);
  return { domid, port, maxCapacity, path, link };
}
