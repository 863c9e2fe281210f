// When a listening server's ring endpoint can be opened. Light: the preload imports it at start-up.

import type net from 'node:net';
import { debug, debugOn } from '../switch/debug.js';

/**
 * Runs `open` as soon as the server is bound: at once when listen() bound it synchronously (a
 * port number, no name to look up, not a cluster worker) — so that a client connecting in the same
 * tick, as `app.listen(0)` then a request does in tests, finds the endpoint — else just before the
 * program's own 'listening' listeners (net emits it asynchronously; in a cluster worker once the
 * primary answered). Never for an `ipv6Only` listener: IPv4 clients must not reach it, and a ring
 * endpoint would serve them (it stays on TCP).
 */
export function whenBound(server: net.Server, listenArgs: unknown[], open: () => void): void {
  const options = listenArgs[0];
  if (options !== null && typeof options === 'object' && (options as { ipv6Only?: unknown }).ipv6Only === true) {
    if (debugOn) debug('listen with ipv6Only -> tcp only (a ring endpoint would serve IPv4 clients too)');
    return;
  }
  const address = server.address();
  if (server.listening && address && typeof address === 'object') open();
  else server.prependOnceListener('listening', open);
}
