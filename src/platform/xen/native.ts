// The Xen part of the native addon, or a typed error saying why Xen cannot be used here.

import { XwayError } from '../../errors.js';
import { hostUnavailableReason, nativeAddon } from '../host/native.js';
import type { XwayNativeXen } from './native-api.js';

export class XenUnavailableError extends XwayError {
  constructor(reason: string) {
    super('ERR_XWAY_XEN_UNAVAILABLE', reason.startsWith('Xen not available') ? `xway: ${reason}` : `xway: Xen not available (${reason})`);
  }
}

let available = false; // once Xen has answered, it stays (the check opens a XenStore connection)

function addon(): (XwayNativeXen & { platformAvailable: true }) | string {
  const why = hostUnavailableReason();
  if (why !== null) return `the native addon is unavailable: ${why}`;
  const native = nativeAddon() as unknown as XwayNativeXen & { platformAvailable: true };
  if (typeof native.xenAvailable !== 'function') return 'the native addon was built without Xen support; rebuild it';
  return native;
}

/** Why the Xen platform cannot be used here ("Xen not available (…)"), or null when it can: the
 *  libraries load, /dev/xen/{evtchn,gntalloc,gntdev} are usable and XenStore answers. */
export function xenUnavailableReason(): string | null {
  if (available) return null; // cheap on the switch's per-connection path
  const native = addon();
  if (typeof native === 'string') return `Xen not available (${native})`;
  const why = native.xenAvailable();
  available = why === null;
  return why;
}

/** The addon's Xen functions, or a XenUnavailableError. */
export function xenAddon(): XwayNativeXen {
  const native = addon();
  if (typeof native === 'string') throw new XenUnavailableError(native);
  if (available) return native;
  const why = native.xenAvailable();
  available = why === null;
  if (why !== null) throw new XenUnavailableError(why);
  return native;
}
