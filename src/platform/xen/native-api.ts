// Types of the Xen part of the native addon (native/src/xen.c). Errors have the same shapes as the
// host part's (see ../host/native-api.ts): `code`/`errno`/`syscall` for system failures, ENOSYS
// with "Xen not available (…)" when Xen is absent.

export declare class XenEventChannel {
  /** `onEvents` runs once per loop turn with every local port that fired (each once). */
  constructor(onEvents: (ports: number[]) => void);
  /** A new local port that domain `domid` may bind to (xenevtchn_bind_unbound_port). */
  bindUnbound(domid: number): number;
  /** A local port connected to `remotePort` of domain `domid`. */
  bindInterdomain(domid: number, remotePort: number): number;
  notify(port: number): void;
  unbind(port: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** XenStore permissions as xenstore-chmod writes them: 'n0', 'r5', 'w3', 'b7'. The first entry
 *  names the owner and everybody else's access; further entries grant one domain each. */
export type XsPerm = string;

export declare class XenStore {
  constructor(onWatch: (path: string, token: string) => void);
  /** null when the node does not exist. */
  read(path: string): string | null;
  /** `null` value: mkdir. */
  write(path: string, value: string | null): void;
  /** In one transaction, each node written with its permissions. */
  writeAll(entries: [path: string, value: string | null, perms: XsPerm[] | null][]): void;
  /** Recursive; an absent node is fine. */
  rm(path: string): void;
  directory(path: string): string[] | null;
  /** Entry 0's domain is the node's owner: the domain that created it (XenStore's word). */
  getPermissions(path: string): XsPerm[] | null;
  setPermissions(path: string, perms: XsPerm[]): void;
  watch(path: string, token: string): void;
  unwatch(path: string, token: string): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface XwayNativeXen {
  /** null, or "Xen not available (…)". */
  xenAvailable(): string | null;
  /** Grants view[offset, offset+size) (4 KiB pages, mapped there with MAP_FIXED) to `domid`;
   *  returns one grant reference per page. notifyOffset ≥ 0: that byte is cleared when the pages
   *  are unmapped (also at process death); notifyPort ≥ 0: that local port is signalled then. */
  xenGrantShare(view: Uint8Array, offset: number, size: number, domid: number, notifyOffset: number, notifyPort: number): number[];
  /** Maps `domid`'s grant references over view[offset, offset+size) with MAP_FIXED. */
  xenGrantMap(view: Uint8Array, offset: number, size: number, domid: number, grefs: number[], notifyOffset: number, notifyPort: number): void;
  /** Shared with the host platform: replaces a mapping with zero pages (frees the grants). */
  segmentUnmap(view: Uint8Array, offset: number, size: number): void;
  XenEventChannel: typeof XenEventChannel;
  XenStore: typeof XenStore;
}
