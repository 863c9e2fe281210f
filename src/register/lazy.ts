// Synchronous, on-demand loading of heavy.ts (require() of an ES module: Node >= 20.19), so that
// `node --import xway/register` costs little at start-up and connect()/listen() can still decide
// synchronously.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { isLocalHost } from '../switch/policy.js';
import { hasNeighbours } from '../switch/neighbours.js';

type Heavy = typeof import('./heavy.js');
const require = createRequire(import.meta.url);
let loaded: Heavy | undefined;

export function heavy(): Heavy {
  return (loaded ??= require('./heavy.js') as Heavy);
}

let xenDevices: boolean | undefined;

/** A cheap first look, before anything heavy is loaded: could a connect to `options` ride a ring
 *  at all? Only to this machine's own names and addresses, or (where Xen's devices exist) to an
 *  IP address another domain may have. */
export function ringPossible(options: { path?: unknown; host?: string }): boolean {
  if (options.path != null) return false;
  const host = options.host || 'localhost';
  if (isLocalHost(host)) return true;
  if (hasNeighbours()) return true; // a neighbouring container's address, or its name
  return net.isIP(host) !== 0 && (xenDevices ??= fs.existsSync('/dev/xen/evtchn'));
}

