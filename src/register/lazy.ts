// Synchronous, on-demand loading of heavy.ts (require() of an ES module: Node >= 20.19), so that
// `node --import xway/register` costs little at start-up and connect()/listen() can still decide
// synchronously.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { isLocalHost } from '../switch/policy.js';
import { registryDirectory } from '../switch/registry-directory.js';
import { ownNamespaces } from '../switch/namespace.js';

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
  return net.isIP(host) !== 0 && ((xenDevices ??= fs.existsSync('/dev/xen/evtchn')) || neighbourEntries());
}

let seen: { at: number; any: boolean } | null = null;

/** Whether the registry holds an entry of another network namespace (a neighbouring container):
 *  one listing of the directory per second, no more. */
function neighbourEntries(): boolean {
  if (seen && Date.now() - seen.at < 1000) return seen.any;
  let any = false;
  try {
    const own = ownNamespaces().netns || '0';
    for (const name of fs.readdirSync(registryDirectory())) {
      const m = /^port-[0-9]+-([0-9]+)\.json$/.exec(name);
      if (m && m[1] !== own) { any = true; break; }
    }
  } catch { /* no registry */ }
  seen = { at: Date.now(), any };
  return any;
}
