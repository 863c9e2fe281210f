// Ring sizes and budgets of Xen links. Grant pages are the scarce thing on Xen: gntalloc lets a
// domain share at most `limit` pages at once (module parameter, default 1024 = 4 MiB, for every
// process of the domain together), so a Xen link's budget is explicit and small by default, and a
// chunk is 1 MiB instead of the host's 8 MiB.

import { readFileSync } from 'node:fs';
import { XwayRangeError } from '../../errors.js';
import { bytesFromEnv } from '../common/limits.js';
import { resolveOptions, type HostChannelOptions } from '../host/limits.js';
import { XEN_MAX_LINK_BYTES } from './link-layout.js';

/** Ring capacity of a Xen connection unless asked otherwise: 64 KiB per direction = 33 pages. */
export const XEN_DEFAULT_CAPACITY = 64 * 1024;
/** Ring memory of one Xen link by default (chunk 0, the link's own 80 pages, aside): 3 MiB = 768
 *  granted pages, 21 connections at the default rings; with chunk 0 that is 848 of gntalloc's
 *  1024 default pages. A link takes pages as its connections need them (1 MiB chunks), so three
 *  links of a few connections each (336 pages) fit the default budget. */
export const XEN_DEFAULT_LINK_BYTES = 3 * 2 ** 20;

export type XenLimits = Required<HostChannelOptions>;

/** `linkBytes`: the option, else XWAY_XEN_RING_MEMORY_PER_LINK, else 3 MiB; at most 20 MiB (what
 *  chunk 0's grant table can describe). */
export function resolveXenOptions(o: HostChannelOptions = {}): XenLimits {
  const linkBytes = o.linkBytes ?? bytesFromEnv('XWAY_XEN_RING_MEMORY_PER_LINK') ?? XEN_DEFAULT_LINK_BYTES;
  if (linkBytes > XEN_MAX_LINK_BYTES) {
    throw new XwayRangeError(`a Xen link's ring memory is at most ${XEN_MAX_LINK_BYTES} bytes (its grant table's size), got ${linkBytes}`);
  }
  return resolveOptions({ ...o, capacity: o.capacity ?? XEN_DEFAULT_CAPACITY, linkBytes });
}

/** gntalloc's page budget for this domain, for messages (null when it cannot be read). */
export function gntallocLimit(): number | null {
  try {
    const n = Number(readFileSync('/sys/module/xen_gntalloc/parameters/limit', 'utf8').trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}
