// This thread's XenStore connection: one libxenstore handle, its watch descriptor polled by libuv,
// watch events dispatched by token. Like events.ts it holds the loop only while a user asks.

import { xenAddon } from './native.js';
import type { XenStore } from './native-api.js';

type Handler = (path: string) => void;

let store: XenStore | undefined;
const watchers = new Map<string, Handler>();
let refs = 0;
let tokens = 0;

export function xenStore(): XenStore {
  if (!store) {
    const { XenStore } = xenAddon();
    store = new XenStore((path, token) => watchers.get(token)?.(path));
    store.unref();
  }
  return store;
}

/** Watches `path` (and everything under it); XenStore also fires once right after registration.
 *  Returns the function that removes the watch. */
export function watch(path: string, handler: Handler): () => void {
  const token = `xway-${process.pid}-${++tokens}`;
  watchers.set(token, handler);
  try {
    xenStore().watch(path, token);
  } catch (err) {
    watchers.delete(token);
    throw err;
  }
  return () => {
    if (!watchers.delete(token)) return;
    try {
      xenStore().unwatch(path, token);
    } catch { /* the connection is gone */ }
  };
}

export function holdStore(hold: boolean): void {
  refs += hold ? 1 : -1;
  if (refs === (hold ? 1 : 0)) {
    if (hold) xenStore().ref();
    else store?.unref();
  }
}

/** This domain's id, as the toolstack recorded it ("domid" under our domain's XenStore home). */
export function selfDomid(): number {
  const value = xenStore().read('domid');
  const domid = value === null ? NaN : Number(value);
  if (!Number.isInteger(domid) || domid < 0 || domid > 0x7fef) {
    throw new Error(`cannot tell this domain's id: XenStore "domid" is ${value === null ? 'absent' : JSON.stringify(value)}`);
  }
  return domid;
}

/** Watches this thread holds (for tests and observers). */
export function activeWatches(): number {
  return watchers.size;
}
