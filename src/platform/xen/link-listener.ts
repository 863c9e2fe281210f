// The accepting side of Xen links: one link listener per server thread, whatever the number of
// ports it serves (as host's listen.ts). It publishes links/<key>/ under our domain's data/xway,
// gives each client domain its own offers/<domid> node (offer-nodes.ts), watches offers/ — one
// watch for every domain and every link — and for each complete offer checks what the client
// wrote, maps its chunk 0, binds its event port, checks the link header and answers "accepted";
// anything wrong is answered "refused:<reason> <text>" after releasing whatever it made. Each
// OPEN on a link then goes to the port it names.

import { randomBytes } from 'node:crypto';
import { Link, LinkError, type OpenDecision, type OpenRequest } from '../common/link.js';
import { ProtocolError, type RefuseReason } from '../host/protocol.js';
import type { EphemeralPorts, Route } from '../../socket/identity.js';
import type { XenChannelEnd } from './channel-end.js';
import type { XenLimits } from './limits.js';
import { XenLinkPlatform } from './link-platform.js';
import { OfferNodes } from './offer-nodes.js';
import { listenerPath, ownerOf, readLinkOffer } from './protocol.js';
import { selfDomid, watch, xenStore } from './store.js';

/** Links one client domain may hold with this listener at once; more are refused as busy. */
export const MAX_LINKS_PER_DOMAIN = 64;

/** What a listening port asks of the thread's link listener. */
export interface PortEntry {
  port: number;
  maxCapacity: number;
  /** Domains that may connect to this port (null: any). */
  allowed: Set<number> | null;
  admit: ((route: Route, client: number) => string | null) | null;
  ports: EphemeralPorts;
  onChannel: (end: XenChannelEnd) => void;
  onRefused: ((reason: RefuseReason, message: string, client: number | null) => void) | null;
}

export class XenLinkListener {
  readonly key = randomBytes(8).toString('hex');
  readonly self = selfDomid();
  readonly path = listenerPath(this.self, this.key);
  readonly #limits: XenLimits;
  readonly #ports = new Map<number, PortEntry>();
  readonly #offers: OfferNodes;
  readonly #unwatch: () => void;
  /** Offers handled (answered, or not ours to answer), as "<domid>/<name>". */
  readonly #seen = new Set<string>();
  /** Links up, by client domain. */
  readonly #links = new Map<number, Set<Link>>();
  #closed = false;
  onclose: (() => void) | null = null;

  constructor(limits: XenLimits) {
    this.#limits = limits;
    const xs = xenStore();
    xs.writeAll([
      [this.path, '', [`n${this.self}`]],
      [`${this.path}/offers`, '', [`n${this.self}`]],
    ]);
    this.#offers = new OfferNodes(`${this.path}/offers`, this.self);
    try {
      this.#unwatch = watch(`${this.path}/offers`, (path) => this.#scan(path));
    } catch (err) {
      this.#offers.close();
      try { xs.rm(this.path); } catch { /* XenStore gone */ }
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Links up with domain `domid` (all domains: without an argument). */
  links(domid?: number): number {
    if (domid !== undefined) return this.#links.get(domid)?.size ?? 0;
    let n = 0;
    for (const s of this.#links.values()) n += s.size;
    return n;
  }

  add(entry: PortEntry): void {
    this.#ports.set(entry.port, entry);
    this.#allowChanged();
  }

  /** The port stops listening. With no port left the listener closes once no link is up: links
   *  stay until their clients close them, as host links do, and a port this thread listens on
   *  meanwhile is served by this listener, so its clients' links carry it (a new listener, under a
   *  new key, would cost each of them a second link: grant pages, the scarce thing on Xen). */
  remove(port: number): void {
    this.#ports.delete(port);
    if (!this.#closeIfUnused()) this.#allowChanged();
  }

  #closeIfUnused(): boolean {
    if (this.#ports.size > 0 || this.links() > 0) return false;
    this.close();
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#offers.close();
    try { xenStore().rm(this.path); } catch { /* XenStore gone */ }
    const onclose = this.onclose;
    this.onclose = null;
    onclose?.();
  }

  #allowChanged(): void {
    let all = false;
    const union = new Set<number>();
    for (const e of this.#ports.values()) {
      if (!e.allowed) all = true;
      else for (const d of e.allowed) union.add(d);
    }
    this.#offers.allow(all ? null : union);
  }

  #refused(reason: RefuseReason, message: string, client: number | null, entry?: PortEntry): void {
    for (const e of entry ? [entry] : this.#ports.values()) e.onRefused?.(reason, message, client);
  }

  /** `path`: what changed (a watch event); only that domain's node is looked at, where it says. */
  #scan(path: string): void {
    if (this.#closed) return;
    const xs = xenStore();
    const base = `${this.path}/offers/`;
    const named = path.startsWith(base) ? this.#offers.domainOf(path.slice(base.length).split('/')[0]) : null;
    let missing = false;
    for (const d of named !== null ? [named] : [...this.#offers.domains]) {
      let names: string[] | null;
      try {
        names = xs.directory(`${base}${d}`);
      } catch {
        continue;
      }
      if (names === null) {
        missing = true; // the domain removed its own node: it gets it back
        continue;
      }
      const present = new Set(names.map((n) => `${d}/${n}`));
      for (const s of this.#seen) if (s.startsWith(`${d}/`) && !present.has(s)) this.#seen.delete(s); // withdrawn
      for (const name of names) {
        if (this.#seen.has(`${d}/${name}`)) continue;
        if (this.#handle(d, name)) this.#seen.add(`${d}/${name}`); // synchronous: never half done
      }
    }
    if (missing) this.#offers.sync();
  }

  /** Handles one offer; false while it is not complete yet. */
  #handle(client: number, name: string): boolean {
    const xs = xenStore();
    const offerPath = `${this.path}/offers/${client}/${name}`;
    let platform: XenLinkPlatform | undefined;
    try {
      if (xs.read(`${offerPath}/state`) !== 'offered') return false; // not complete yet, or answered
      // Who made it is XenStore's word, and must be the domain whose node it is in (dom0, which
      // may write anywhere, could put one in another domain's node).
      const owner = ownerOf(xs, offerPath);
      if (owner !== client) throw new ProtocolError('malformed', `an offer in domain ${client}'s node was created by domain ${owner}`);
      if (this.links(client) >= MAX_LINKS_PER_DOMAIN) throw new ProtocolError('busy', `domain ${client} holds ${MAX_LINKS_PER_DOMAIN} links already`);
      const offer = readLinkOffer(xs, offerPath);
      try {
        platform = XenLinkPlatform.accept(client, offer.grefs, offer.eventPort, this.#limits.linkBytes);
      } catch (err) {
        if (err instanceof LinkError) throw new ProtocolError('malformed', err.message);
        throw err; // the hypervisor's refusal (bad references or port): 'internal', with its text
      }
      let link: Link;
      try {
        link = new Link('acceptor', platform); // checks the header the client wrote
      } catch (err) {
        throw new ProtocolError('malformed', (err as Error).message);
      }
      platform.attach(link);
      const accepted = platform;
      platform = undefined; // the link's from here
      this.#track(client, link);
      link.onOpen = (request) => this.#open(request, client);
      accepted.established();
      try {
        xs.write(`${offerPath}/state`, 'accepted');
      } catch {
        link.close(); // the client withdrew meanwhile
        return true;
      }
      link.doorbell(); // OPENs may be waiting already
      return true;
    } catch (err) {
      platform?.close();
      const reason: RefuseReason = err instanceof ProtocolError ? err.reason : 'internal';
      const text = (err as Error).message;
      try { xs.write(`${offerPath}/state`, `refused:${reason} ${text}`.slice(0, 1000)); } catch { /* withdrawn, or not ours to answer */ }
      this.#refused(reason, text, client);
      return true;
    }
  }

  #track(client: number, link: Link): void {
    let set = this.#links.get(client);
    if (!set) this.#links.set(client, (set = new Set()));
    set.add(link);
    link.onclose = () => {
      set.delete(link);
      if (set.size === 0 && this.#links.get(client) === set) this.#links.delete(client);
      if (!this.#closed) this.#closeIfUnused();
    };
  }

  /** An OPEN on a link from domain `client`, for the port it names. */
  #open(request: OpenRequest, client: number): OpenDecision {
    const entry = this.#ports.get(request.port);
    const refuse = (refuse: 'not-listening' | 'malformed' | 'limit', why: string): OpenDecision => {
      this.#refused(refuse === 'limit' ? 'busy' : refuse === 'malformed' ? 'malformed' : 'denied', why, client, entry);
      return { refuse, why };
    };
    if (!entry) return refuse('not-listening', `nothing listens on port ${request.port}`);
    if (request.clientPort !== 0) return refuse('malformed', 'this listener grants no ports'); // so none is ours to take
    if (entry.allowed && client !== this.self && !entry.allowed.has(client)) return refuse('malformed', `domain ${client} is not allowed`);
    const why = entry.admit?.(request.route, client) ?? null;
    if (why !== null) return refuse('malformed', why);
    let port: number;
    try {
      port = entry.ports.allocate();
    } catch (err) {
      return refuse('limit', (err as Error).message);
    }
    return { port, maxCapacity: entry.maxCapacity, take: (end) => entry.onChannel(end as XenChannelEnd), release: () => entry.ports.release(port) };
  }
}

let current: XenLinkListener | null = null;

/** This thread's link listener, made on first use (with the limits of the first port). */
export function linkListener(limits: XenLimits): XenLinkListener {
  if (current && !current.closed) return current;
  const made = new XenLinkListener(limits);
  made.onclose = () => { if (current === made) current = null; };
  current = made;
  return made;
}
