// Ephemeral ports a listener hands each link in advance, so that the client can connect at once
// — 'connect' without waiting for the server's answer, as a TCP client's connect completes in the
// kernel without waking the server — and still show the port the server sees (the same number at
// both ends, unique among the listener's connections: the grant comes from the listener's own
// EphemeralPorts). A client uses a granted port in its OPEN; the listener checks it was granted
// to that link, and tops the grant up after accepts. A link that runs dry (its clients connect
// faster than grants come) gets bigger grants, up to MAX_GRANT; grants never take more than a
// quarter of the ports still free, so connections that wait for ACCEPT always find one.

import type { Link } from '../platform/common/link.js';
import type { EphemeralPorts } from './identity.js';

const FIRST_GRANT = 16;
const MAX_GRANT = 1024;

interface LinkGrant {
  outstanding: Set<number>;
  target: number;
}

export class PortGrants {
  readonly #ports: EphemeralPorts;
  readonly #listenPort: number;
  readonly #epoch: number;
  readonly #maxCapacity: number;
  readonly #links = new Map<Link, LinkGrant>();

  constructor(ports: EphemeralPorts, listenPort: number, epoch: number, maxCapacity: number) {
    this.#ports = ports;
    this.#listenPort = listenPort;
    this.#epoch = epoch;
    this.#maxCapacity = maxCapacity;
  }

  /** An OPEN on `link` with `port`: true (and the port is the connection's from now on) if it
   *  was granted to that link and not used yet. */
  take(link: Link, port: number): boolean {
    return this.#links.get(link)?.outstanding.delete(port) ?? false;
  }

  /** After an accept on `link` (`waited`: the client had no granted port left, or none yet):
   *  grants more when fewer than half of its grant are left. */
  refill(link: Link, waited: boolean): void {
    if (link.closed) return;
    let g = this.#links.get(link);
    if (!g) {
      g = { outstanding: new Set(), target: FIRST_GRANT };
      this.#links.set(link, g);
    } else if (waited) {
      g.target = Math.min(g.target * 2, MAX_GRANT);
    }
    if (g.outstanding.size >= g.target >> 1) return;
    const n = Math.min(g.target - g.outstanding.size, Math.floor(this.#ports.free / 4));
    const ports: number[] = [];
    try {
      for (let i = 0; i < n; i++) ports.push(this.#ports.allocate());
    } catch { /* none left: the client waits for ACCEPTs */ }
    if (ports.length === 0) return;
    for (const p of ports) g.outstanding.add(p);
    link.grant(this.#listenPort, this.#epoch, this.#maxCapacity, ports);
  }

  /** `link` closed: the ports it was granted and did not use are free again. */
  drop(link: Link): void {
    const g = this.#links.get(link);
    if (!g) return;
    this.#links.delete(link);
    for (const p of g.outstanding) this.#ports.release(p);
  }

  /** The listener closed: no grant of it is good any more. */
  close(): void {
    for (const link of [...this.#links.keys()]) this.drop(link);
  }
}
