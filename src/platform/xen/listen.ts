// A listening port's Xen endpoint: data/xway/<port> under our domain's XenStore home says which
// thread's link listener serves it (link-listener.ts); connections to the port come as OPENs on
// that listener's links. Publishing a port costs one XenStore transaction, and no watch of its own.

import { type HostChannelOptions } from '../host/limits.js';
import { type RefuseReason } from '../host/protocol.js';
import { EphemeralPorts, type Route } from '../../socket/identity.js';
import type { XenChannelEnd } from './channel-end.js';
import { resolveXenOptions } from './limits.js';
import { linkListener } from './link-listener.js';
import { xenAddon } from './native.js';
import { endpointPath, MAX_DOMID, parseInteger, XS_VERSION } from './protocol.js';
import { holdStore, xenStore } from './store.js';

export interface XenListener {
  readonly domid: number;
  readonly port: number;
  /** The endpoint's XenStore path. */
  readonly path: string;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface XenListenOptions extends HostChannelOptions {
  /** Domains allowed to read the endpoint and connect; default: any domain (XenStore and the grant
   *  tables still only let through what the administrator permits). */
  allowDomains?: number[];
  /** A link offer or a connection was refused; for logs and tests. */
  onRefused?: (reason: RefuseReason, message: string, client: number | null) => void;
  /** Why a client of domain `client` cannot reach this listener along `route` (null: it can).
   *  Default: every route. */
  admit?: (route: Route, client: number) => string | null;
  /** The listener's ephemeral ports (shared with its other platforms' listeners). */
  ports?: EphemeralPorts;
}

/** Publishes an endpoint for `port` and calls `onChannel` for each connection accepted on it. */
export function listenXen(port: number, options: XenListenOptions, onChannel: (end: XenChannelEnd) => void): XenListener {
  xenAddon();
  const xs = xenStore();
  const limits = resolveXenOptions(options);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, got ${port}`);
  const allowed = options.allowDomains?.map((d) => parseInteger(String(d), 'allowDomains entry', 0, MAX_DOMID));
  const links = linkListener(limits);
  const self = links.self;
  const path = endpointPath(self, port);
  // Readable by everybody, or by the allowed domains.
  const readPerms = allowed ? [`n${self}`, ...allowed.map((d) => `r${d}`)] : [`r${self}`];
  links.add({
    port, maxCapacity: limits.maxCapacity, allowed: allowed ? new Set(allowed) : null, admit: options.admit ?? null,
    ports: options.ports ?? new EphemeralPorts(), onChannel, onRefused: options.onRefused ?? null,
  });
  try {
    xs.rm(path); // a previous listener of ours that died without cleaning up
    xs.writeAll([
      [path, '', readPerms],
      [`${path}/version`, XS_VERSION, readPerms],
      [`${path}/domid`, String(self), readPerms],
      [`${path}/max-capacity`, String(limits.maxCapacity), readPerms],
      [`${path}/link`, links.key, readPerms],
    ]);
  } catch (err) {
    links.remove(port);
    throw err;
  }

  let closed = false;
  let refd = false;
  const listener: XenListener = {
    domid: self,
    port,
    path,
    close() {
      if (closed) return;
      listener.unref(); // before `closed`: unref() is a no-op once closed
      closed = true;
      try { xs.rm(path); } catch { /* XenStore gone */ }
      links.remove(port);
    },
    ref() {
      if (closed || refd) return;
      refd = true;
      holdStore(true);
    },
    unref() {
      if (closed || !refd) return;
      refd = false;
      holdStore(false);
    },
  };
  listener.ref();
  return listener;
}
