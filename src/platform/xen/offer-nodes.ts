// A link listener's offers/<domid> nodes: one per client domain, made by the listener, writable by
// that domain alone. Why one per domain: in XenStore whoever may write a node may remove it with
// everything under it, so a directory every domain may write is a directory any domain can empty
// or delete for all. A node per domain can be removed only by the domain it is for (which then
// hurts itself only, and the listener puts it back).
//
// Which domains: those a listener's ports allow (allowDomains), else every domain this domain can
// know of — itself, dom0, the domains dom0's administrator recorded in the address map
// (xen-permit.sh; a recorded guest may read it), and, where /local/domain can be listed (dom0),
// every domain there. One watch on the map and (in dom0) one on @introduceDomain keep the set
// current; a domain's node gets its permission again each time (xenstored drops permissions that
// name a domain once it is destroyed, and a new domain may get its id).

import { HOSTS_PATH, MAX_DOMID, parseInteger } from './protocol.js';
import { watch, xenStore } from './store.js';

export class OfferNodes {
  readonly #base: string;
  readonly #self: number;
  /** Domains the ports allow; null: every domain we can know of. */
  #allowed: Set<number> | null = null;
  readonly #made = new Set<number>();
  readonly #unwatch: (() => void)[] = [];
  #closed = false;

  /** Nodes under `base` (a listener's offers/ directory, which exists). */
  constructor(base: string, self: number) {
    this.#base = base;
    this.#self = self;
    for (const path of [HOSTS_PATH, ...(this.#canListDomains() ? ['@introduceDomain'] : [])]) {
      try {
        this.#unwatch.push(watch(path, () => this.sync()));
      } catch { /* the set is still made now, and when ports change */ }
    }
  }

  get domains(): ReadonlySet<number> {
    return this.#made;
  }

  /** Restricts the nodes to `domains` (null: every domain we can know of), and syncs. */
  allow(domains: Set<number> | null): void {
    this.#allowed = domains;
    this.sync();
  }

  /** Makes missing nodes and gives every node its permissions again; removes nodes of domains no
   *  longer allowed. */
  sync(): void {
    if (this.#closed) return;
    const xs = xenStore();
    const want = this.#allowed ? new Set([this.#self, ...this.#allowed]) : this.#known();
    // offers/ itself first: removed (only a privileged domain can), it comes back ours alone.
    try {
      xs.writeAll([[this.#base, null, [`n${this.#self}`]]]);
    } catch { /* XenStore gone: nothing to sync */ }
    for (const d of want) {
      const perms = d === this.#self ? [`n${this.#self}`] : [`n${this.#self}`, `b${d}`];
      try {
        xs.writeAll([[`${this.#base}/${d}`, null, perms]]);
        this.#made.add(d);
      } catch { /* a domain XenStore does not know (any more): no node */ }
    }
    for (const d of [...this.#made]) {
      if (want.has(d)) continue;
      try { xs.rm(`${this.#base}/${d}`); } catch { /* gone */ }
      this.#made.delete(d);
    }
  }

  /** A node's domain, if `name` is one of ours. */
  domainOf(name: string): number | null {
    const d = /^(0|[1-9][0-9]{0,4})$/.test(name) ? Number(name) : NaN;
    return this.#made.has(d) ? d : null;
  }

  close(): void {
    this.#closed = true;
    for (const u of this.#unwatch) u();
    this.#unwatch.length = 0;
  }

  #canListDomains(): boolean {
    try {
      return xenStore().directory('/local/domain') !== null;
    } catch {
      return false;
    }
  }

  #known(): Set<number> {
    const xs = xenStore();
    const known = new Set([this.#self, 0]);
    const add = (value: string | null, what: string) => {
      try {
        known.add(parseInteger(value, what, 0, MAX_DOMID));
      } catch { /* not a domain id */ }
    };
    try {
      for (const name of xs.directory(HOSTS_PATH) ?? []) add(xs.read(`${HOSTS_PATH}/${name}`), 'address map entry');
    } catch { /* not ours to read: not recorded */ }
    try {
      for (const name of xs.directory('/local/domain') ?? []) add(name, 'domain');
    } catch { /* a guest: it may not list the domains */ }
    return known;
  }
}
