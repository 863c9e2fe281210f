// A peer domain's liveness, as XenStore tells it: one watch per link on the peer's
// /local/domain/<id>/domid, which the toolstack removes while destroying the domain. A destroyed
// domain runs no kernel to clear a liveness byte, and while we map its pages Xen keeps it a
// zombie, so this is the first (and, for an acceptor, the only) sign.

import { watch, xenStore } from './store.js';

/** Calls `gone` once when domain `domid` is gone; returns the function that stops watching. */
export function watchDomain(domid: number, gone: (reason: string) => void): () => void {
  const path = `/local/domain/${domid}/domid`;
  let readable = false;
  let done = false;
  let unwatch: (() => void) | null = null;
  const check = () => {
    if (done) return;
    let exists: boolean;
    try {
      exists = xenStore().read(path) !== null;
      readable = true;
    } catch (err) {
      // XenStore answers EACCES, not ENOENT, for a node that is gone when its nearest remaining
      // ancestor is not ours to read (/local/domain is not, for a guest). So a node we could read
      // (xen-permit.sh lets recorded guests read each other's) that now answers EACCES was removed
      // with the domain's home; one we never could read tells nothing: the liveness byte still
      // tells a process's end.
      if ((err as { code?: string }).code !== 'EACCES' || !readable) return;
      exists = false;
    }
    if (exists) return;
    done = true;
    unwatch?.();
    gone(`peer domain ${domid} is gone`);
  };
  try {
    unwatch = watch(path, check); // fires once at once: that first look learns whether we may read it
  } catch { /* no watch: the liveness byte still works */ }
  return () => {
    done = true;
    unwatch?.();
    unwatch = null;
  };
}
