// When a listening server's ring endpoint can be opened. Light: the preload imports it at start-up.

import type net from 'node:net';

/**
 * Runs `open` as soon as the server is bound: at once when listen() bound it synchronously (a
 * port number, no name to look up, not a cluster worker) — so that a client connecting in the same
 * tick, as `app.listen(0)` then a request does in tests, finds the endpoint — else just before the
 * program's own 'listening' listeners (net emits it asynchronously; in a cluster worker once the
 * primary answered).
 */
export function whenBound(server: net.Server, open: () => void): void {
  const address = server.address();
  if (server.listening && address && typeof address === 'object') open();
  else server.prependOnceListener('listening', open);
}
