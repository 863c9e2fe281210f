// The client's side of Xen link set-up, once per (this thread, server thread) pair: chunk 0
// shared with the server's domain, an unbound event port for it, and one link offer under the
// listener's offers/<our domain>/ in one XenStore transaction; the server maps it, binds the port
// and answers. Later connections to that server thread are slots on the link. Set-up releases
// every grant, port and slot it made, and withdraws its offer, when it fails.

import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { XwayError } from '../../errors.js';
import { SetupError } from '../host/connect.js';
import { ProtocolError } from '../host/protocol.js';
import { Link } from '../common/link.js';
import type { XenLimits } from './limits.js';
import { XenLinkPlatform } from './link-platform.js';
import { linkOfferEntries, listenerPath } from './protocol.js';
import { selfDomid, watch, xenStore } from './store.js';

/** This thread's links, by server domain and listener key. */
const links = new Map<string, Promise<Link>>();

/** The link to listener `key` of domain `domid`, made if there is none. */
export function xenLinkTo(domid: number, key: string, limits: XenLimits): Promise<Link> {
  const id = `${domid}/${key}`;
  let link = links.get(id);
  if (!link) {
    link = setUpLink(domid, key, limits);
    links.set(id, link);
    const forget = () => { if (links.get(id) === link) links.delete(id); };
    link.then((l) => {
      if (l.closed) forget();
      else l.onclose = forget;
    }, forget);
  }
  return link;
}

function setUpLink(domid: number, key: string, limits: XenLimits): Promise<Link> {
  const xs = xenStore();
  const self = selfDomid();
  const offers = `${listenerPath(domid, key)}/offers/${self}`;
  const offerPath = `${offers}/${process.pid}-${threadId}-${randomBytes(4).toString('hex')}`;

  return new Promise<Link>((resolve, reject) => {
    let platform: XenLinkPlatform | undefined;
    let link: Link | undefined;
    let offered = false;
    let unwatch: (() => void) | null = null;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const withdraw = () => {
      clearTimeout(timer);
      unwatch?.();
      unwatch = null;
      if (offered) {
        offered = false;
        try { xs.rm(offerPath); } catch { /* XenStore gone: nothing left to withdraw */ }
      }
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      withdraw();
      if (link) link.close(); // releases the platform with it
      else platform?.close();
      reject(err instanceof XwayError ? err : new SetupError(`Xen link set-up failed: ${(err as Error).message}`, { cause: err }));
    };
    const onState = () => {
      if (settled) return;
      let state: string | null;
      try {
        state = xs.read(`${offerPath}/state`);
      } catch (err) {
        return fail(err);
      }
      if (state === null) return fail(new SetupError('the link offer was withdrawn before the server answered'));
      if (state === 'offered') return;
      if (state.startsWith('refused:')) return fail(new SetupError(`domain ${domid} refused the link (${state.slice(8, 300)})`));
      if (state !== 'accepted') return fail(new ProtocolError('malformed', `offer state ${JSON.stringify(state.slice(0, 40))}`));
      if (!platform!.peerAlive) return fail(new SetupError(`domain ${domid} answered without mapping the link`));
      settled = true;
      withdraw();
      platform!.established();
      resolve(link!);
    };

    try {
      platform = XenLinkPlatform.initiate(domid, limits.linkBytes);
      link = new Link('initiator', platform);
      platform.attach(link);
      try {
        xs.writeAll(linkOfferEntries(offerPath, self, domid, { eventPort: platform.port, grefs: [...platform.chunk0Grefs] }));
      } catch (err) {
        // No offers/<us> node: the listener takes no links from this domain (docs/xen.md).
        const code = (err as { code?: string }).code;
        if (code === 'EACCES' || code === 'ENOENT') {
          throw new SetupError(`domain ${domid}'s listener takes no links from domain ${self} (${code} on ${offers}: record the domain with xen-permit.sh, or list it in allowDomains)`);
        }
        throw err;
      }
      offered = true;
      unwatch = watch(`${offerPath}/state`, onState);
      timer = setTimeout(() => fail(new SetupError(`Xen link set-up not finished within ${limits.setupTimeoutMs} ms`)), limits.setupTimeoutMs);
    } catch (err) {
      fail(err);
    }
  });
}
