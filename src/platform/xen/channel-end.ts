// One connection of a Xen link, as the socket layer sees it: a LinkChannelEnd (slot, channel in a
// chunk of granted pages, the link's doorbell and lifeline) that says it is Xen's and names the
// peer's domain. Its own class, so observers (the socket layer's xway stat table) can tell a Xen
// channel, whose pages no other process can open, from a host one.

import { LinkChannelEnd } from '../common/link.js';

export class XenChannelEnd extends LinkChannelEnd {
  declare readonly peer: { domid: number };
}
