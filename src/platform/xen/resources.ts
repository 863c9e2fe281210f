// What this thread holds of Xen's per-domain resources, counted where they are taken: grant pages
// shared (gntalloc) and mapped (gntdev), event-channel ports, XenStore watches, links. For tests
// and observers: the figures docs/xen.md compares per connection.

import { boundPorts } from './events.js';
import { activeWatches } from './store.js';

export const held = { grantedPages: 0, mappedPages: 0, links: 0 };

export interface XenResources {
  grantedPages: number;
  mappedPages: number;
  ports: number;
  watches: number;
  links: number;
}

export function xenResources(): XenResources {
  return { ...held, ports: boundPorts(), watches: activeWatches() };
}
