// Loading the native addon (native/). It is optional: without it (not Linux, or not built) xway
// still works between threads and over TCP, and the host platform says exactly why it is absent.

import { createRequire } from 'node:module';
import type { XwayNative, XwayNativeLinux } from './native-api.js';
import { XwayError } from '../../errors.js';

let loaded: XwayNative | undefined;

function load(): XwayNative {
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    loaded = require('../../../native/build/Release/xway_native.node') as XwayNative;
  } catch (err) {
    loaded = {
      platformAvailable: false,
      unavailableReason: `the native addon did not load (${(err as Error).message.split('\n')[0]}); run npm install to build it`,
    };
  }
  return loaded;
}

/** Why the host platform is unavailable, or null when it is available. */
export function hostUnavailableReason(): string | null {
  const native = load();
  return native.platformAvailable ? null : native.unavailableReason;
}

/** The addon, or a HostUnavailableError saying why it cannot be had. */
export function nativeAddon(): XwayNativeLinux {
  const native = load();
  if (!native.platformAvailable) throw new HostUnavailableError(native.unavailableReason);
  return native;
}

/** Closes descriptors received from a peer that we are not keeping; one already closed is fine. */
export function closeReceived(fds: number[]): void {
  for (const fd of fds) {
    try { nativeAddon().closeFd(fd); } catch { /* already closed */ }
  }
}

export class HostUnavailableError extends XwayError {
  constructor(reason: string) {
    super('ERR_XWAY_HOST_UNAVAILABLE', `xway host platform unavailable: ${reason}`);
  }
}
