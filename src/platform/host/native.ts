// Loading the native addon (native/). It is optional: without it (not Linux, no prebuilt binary that
// loads and no local build) xway still works between threads and over TCP, and the host platform
// says exactly why it is absent. Which binary is tried, in which order: addon.ts.

import type { XwayNative, XwayNativeLinux } from './native-api.js';
import { XwayError } from '../../errors.js';
import { loadAddon } from './addon.js';
import { installBulkCopier } from '../../ring/bulk-copy.js';

let loaded: XwayNative | undefined;

function load(): XwayNative {
  if (loaded) return loaded;
  const result = loadAddon(); // a local build, else the prebuilt binary for this platform (addon.ts)
  loaded = result.ok ? result.addon as XwayNative : { platformAvailable: false, unavailableReason: result.reason };
  // Large ring copies become memcpy's (ring/bulk-copy.ts); an older binary without them is fine.
  if (loaded.platformAvailable && typeof loaded.copyIn === 'function') installBulkCopier(loaded);
  return loaded;
}

/** Keeps the heap memory freed receive slabs leave mapped (socket/receive-pool.ts, native/src/
 *  heap.c), unless XWAY_KEEP_RECEIVE_MEMORY=0 or the environment sets glibc's thresholds itself.
 *  Returns whether it did (not without the addon, nor off glibc). */
export function keepHeapMemory(): boolean {
  const env = process.env;
  if (env.XWAY_KEEP_RECEIVE_MEMORY === '0' || env.MALLOC_MMAP_THRESHOLD_ !== undefined || env.MALLOC_TRIM_THRESHOLD_ !== undefined) return false;
  const native = load();
  return native.platformAvailable && typeof native.keepHeapMemory === 'function' && native.keepHeapMemory();
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
