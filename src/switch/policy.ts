// The XWAY switch's two questions for a connect(port, host): may this connection use a ring at
// all (the XWAY environment variable and the per-call `transport` option), and is `host` this
// machine (only then can the peer be co-resident).

import os from 'node:os';
import net from 'node:net';
import { XwayRangeError } from '../errors.js';

export type TransportPolicy = 'off' | 'auto' | 'force';

/** The per-call option wins over XWAY=off|auto|force; the default is auto. */
export function transportPolicy(option?: string): TransportPolicy {
  const value = option ?? process.env.XWAY ?? 'auto';
  if (value === 'off' || value === 'auto' || value === 'force') return value;
  throw new XwayRangeError(`transport must be 'off', 'auto' or 'force' (from ${option !== undefined ? 'the transport option' : 'XWAY'}), got '${value}'`);
}

/** True when `host` names this machine: loopback, one of its interface addresses, or its
 *  host name. Decided without DNS, so connect() can choose synchronously. */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined || host === '' || host === 'localhost') return true;
  const family = net.isIP(host);
  // os.hostname() is a system call: asked only for a name, never for an address (a connect's usual case).
  if (family === 0) return host === os.hostname(); // another name: resolving it would make the choice async
  if (family === 4 && host.startsWith('127.')) return true;
  if (host === '::1' || host === '0.0.0.0' || host === '::') return true;
  if (host.startsWith('::ffff:127.')) return true;
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.address === host) return true;
  }
  return false;
}
