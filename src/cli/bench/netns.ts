// `xway bench --netns`: the two bench peers in two network namespaces of their own, joined by a
// veth pair — the shape of two containers on one host — so ring and TCP are compared where xway
// would be deployed: TCP then crosses a veth pair (192.0.2.101 ↔ 192.0.2.102, documentation
// addresses that exist only inside these namespaces), not loopback. Both peers keep this process's
// mount namespace, so they share one registry directory (a fresh one for the run, as a shared
// volume would be) and see the Unix socket's path.
//
// Needs root (creating network namespaces) and iproute2's `ip`. Everything is made inside the two
// new namespaces (the veth's ends are created in them directly; nothing is added to the namespace
// the command runs in) and removed when the run ends, on Ctrl-C too.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** The server peer's and the client peer's addresses, inside their namespaces only. */
export const NETNS_SERVER_ADDRESS = '192.0.2.101';
export const NETNS_CLIENT_ADDRESS = '192.0.2.102';

/** How a bench peer is started: passed to Peer (peers.ts), which forks with it. */
export interface PeerLaunch {
  /** The module the peer runs (instead of peer.js). */
  url: URL;
  /** The program fork() starts, and its arguments before the module: here `ip netns exec <ns> node`. */
  execPath: string;
  execArgv: string[];
  env: NodeJS.ProcessEnv;
}

export interface NetnsPair {
  server: PeerLaunch;
  client: PeerLaunch;
  /** Removes the namespaces (and so the veth pair). Idempotent. */
  close(): void;
}

/** Why --netns cannot run here, or null. */
export function netnsUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `network namespaces are Linux's (this is ${process.platform})`;
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) return `creating network namespaces needs root (this is uid ${process.geteuid()})`;
  const r = spawnSync('ip', ['-V'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) return 'iproute2\'s ip command is not available (apt-get install iproute2)';
  return null;
}

const PEER = new URL('./netns-peer.js', import.meta.url);

/** Makes the two namespaces and the veth pair; `registryDir` becomes both peers' XWAY_DIR. */
export function createNetnsPair(registryDir: string): NetnsPair {
  const server = `xwb${process.pid}s`, client = `xwb${process.pid}c`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', close);
    for (const ns of [server, client]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  };
  process.on('exit', close);
  try {
    ip('netns', 'add', server);
    ip('netns', 'add', client);
    // Both ends made inside the new namespaces: eth0 in the server's, its peer eth0 in the client's.
    ip('-n', server, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client);
    ip('-n', server, 'addr', 'add', `${NETNS_SERVER_ADDRESS}/24`, 'dev', 'eth0');
    ip('-n', client, 'addr', 'add', `${NETNS_CLIENT_ADDRESS}/24`, 'dev', 'eth0');
    for (const ns of [server, client]) {
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    // A veth carries (and its address is listed by getifaddrs, which xway routes by) only once both
    // ends are up: wait for the carrier.
    for (const ns of [server, client]) {
      const deadline = Date.now() + 3000;
      while (!/LOWER_UP/.test(execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' }))) {
        if (Date.now() > deadline) throw new Error(`eth0 in ${ns} has no carrier after 3 s`);
        spawnSync('sleep', ['0.02']);
      }
    }
  } catch (err) {
    close();
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`cannot create the bench's network namespaces: ${stderr || (err as Error).message}`);
  }
  mkdirSync(registryDir, { recursive: true, mode: 0o700 });
  const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, XWAY_DIR: registryDir, ...extra });
  const launch = (ns: string, extra: Record<string, string>): PeerLaunch => ({
    url: PEER, execPath: 'ip', execArgv: ['netns', 'exec', ns, process.execPath], env: env(extra),
  });
  return {
    server: launch(server, { XWAY_BENCH_LISTEN_HOST: '0.0.0.0' }),
    client: launch(client, { XWAY_BENCH_CONNECT_HOST: NETNS_SERVER_ADDRESS }),
    close,
  };
}

/** Where the run's registry lives: beside its Unix sockets. */
export const registryDirIn = (socketDir: string) => join(socketDir, 'registry');
