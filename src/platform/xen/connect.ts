// The connecting side of Xen connections: find the endpoint in XenStore, take (or make, once) the
// link to the server thread that serves it (link-connect.ts), and open the connection on it — a
// slot and an OPEN record, no XenStore, no grant and no event channel of its own unless the link
// must grow a chunk. Rejects with a typed error and leaves nothing behind when it fails.

import { openOnLink, SetupError } from '../host/connect.js';
import { type HostChannelOptions } from '../host/limits.js';
import { ProtocolError } from '../host/protocol.js';
import type { Route } from '../../socket/identity.js';
import { XenChannelEnd } from './channel-end.js';
import { resolveXenOptions } from './limits.js';
import { xenLinkTo } from './link-connect.js';
import { xenAddon } from './native.js';
import { addressKey, HOSTS_PATH, MAX_DOMID, parseInteger, readEndpoint, type XenEndpoint } from './protocol.js';
import { selfDomid, xenStore } from './store.js';

export { XEN_DEFAULT_CAPACITY, resolveXenOptions } from './limits.js';

export interface XenChannelOptions extends HostChannelOptions {
  /** The address connected to and the one connected from, as the client sees them. */
  route?: Route;
}

/** The endpoint domain `domid` publishes for `port`, or null (none, or not readable from here). */
export function lookupXenEndpoint(domid: number, port: number): XenEndpoint | null {
  xenAddon();
  return readEndpoint(xenStore(), domid, port);
}

/** The domain the host administrator recorded for `address` (scripts/xen-permit.sh), or null. */
export function xenPeerFor(address: string): number | null {
  xenAddon();
  let value: string | null;
  try {
    value = xenStore().read(`${HOSTS_PATH}/${addressKey(address)}`);
  } catch (err) {
    if ((err as { code?: string }).code === 'EACCES' || err instanceof ProtocolError) return null;
    throw err;
  }
  return value === null ? null : parseInteger(value, `${HOSTS_PATH} entry for ${address}`, 0, MAX_DOMID);
}

export { selfDomid };

/** Opens a connection to the endpoint domain `domid` publishes for `port`. Resolves once the
 *  server accepted it (`end.connection.port` is its ephemeral port). Rejects with
 *  XenUnavailableError (ERR_XWAY_XEN_UNAVAILABLE) where Xen is absent, SetupError (ERR_XWAY_SETUP)
 *  when there is no endpoint, no link can be had or the server refuses, LinkError at a limit,
 *  ProtocolError for malformed records. */
export async function connectXen(domid: number, port: number, options: XenChannelOptions = {}): Promise<XenChannelEnd> {
  xenAddon();
  const limits = resolveXenOptions(options);
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw new SetupError(`bad domain id ${domid}`);
  const endpoint = readEndpoint(xenStore(), domid, port);
  if (!endpoint) throw new SetupError(`domain ${domid} publishes no xway endpoint for port ${port}`);
  if (limits.capacity > endpoint.maxCapacity) {
    throw new SetupError(`ring capacity ${limits.capacity} exceeds the endpoint's maximum ${endpoint.maxCapacity}`);
  }
  const link = await xenLinkTo(domid, endpoint.link, limits);
  // Xen listeners grant no ports yet, so a connection made at once is only with a server that does.
  return (await openOnLink(link, port, limits.capacity, options.route ?? { target: '0.0.0.0', source: '0.0.0.0' }, limits.setupTimeoutMs)) as XenChannelEnd;
}
