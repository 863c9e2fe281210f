// Where this process lives, as the registry records it: its network namespace (which addresses are
// its own, and which server it can reach at 127.0.0.1), its PID namespace (whether a pid in an
// entry means anything here), the addresses a listener of it accepts connections on, and a name a
// person recognises (the container's).
//
// Namespaces are told apart by the inode of /proc/self/ns/<kind>: the same for every process of one
// namespace, different for another, and stable while the namespace exists.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

export interface NamespaceIdentity {
  /** The network namespace ('' where /proc cannot tell: then every entry counts as ours). */
  netns: string;
  /** The PID namespace. */
  pidns: string;
  /** The container's name where the cgroup or the host name gives one, else the host name. */
  container: string;
}

let own: NamespaceIdentity | undefined;

/** This process's namespaces (read once: a process does not change namespace under Node). */
export function ownNamespaces(): NamespaceIdentity {
  return (own ??= { netns: namespaceId('net'), pidns: namespaceId('pid'), container: containerName() });
}

function namespaceId(kind: 'net' | 'pid'): string {
  try {
    return String(fs.statSync(`/proc/self/ns/${kind}`).ino);
  } catch {
    return '';
  }
}

/** A container runtime's id for this process (docker, containerd, cri-o, podman), shortened as
 *  they show it, from /proc/self/cgroup; else the host name (Docker and Kubernetes set it to the
 *  container's or pod's name). */
export function containerName(): string {
  try {
    const cgroup = fs.readFileSync('/proc/self/cgroup', 'utf8');
    const id = /(?:docker|containerd|crio|libpod)[-/:]([0-9a-f]{12,64})/.exec(cgroup)?.[1];
    if (id) return id.slice(0, 12);
  } catch { /* no /proc */ }
  return os.hostname();
}

/** The addresses a listener bound to `bound` accepts connections on in this namespace: every
 *  address of its interfaces for a wildcard ('0.0.0.0': IPv4 ones; '::': all), else `bound`. */
export function listenAddresses(bound: string): string[] {
  if (bound !== '0.0.0.0' && bound !== '::' && bound !== '') return [plainAddress(bound)];
  const out: string[] = [];
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv6' && bound === '0.0.0.0') continue;
      if (a.family === 'IPv6' && a.address.startsWith('fe80:')) continue; // link-local: needs a zone
      out.push(a.address);
    }
  }
  return [...new Set(out)];
}

/** '::ffff:a.b.c.d' as 'a.b.c.d'; other addresses unchanged. */
export function plainAddress(address: string): string {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : '';
  return v4 && net.isIPv4(v4) ? v4 : address;
}
