// The bench peer of `xway bench --netns` (netns.ts): peer.js itself, told where to listen and
// connect. peer.js listens on and connects to 127.0.0.1; in a network namespace of its own the
// server must listen on its addresses (XWAY_BENCH_LISTEN_HOST, 0.0.0.0) and the client reach the
// server namespace's address (XWAY_BENCH_CONNECT_HOST) over the veth pair. This process runs
// nothing but the peer, so the loopback address is rewritten where the peer hands it to net and
// to xway — whichever test it runs — and peer.js stays as it is. A rewrite that missed a call
// would show at once: 127.0.0.1 has no server in either namespace, and the point fails.

import net from 'node:net';
import xway from '../../index.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', undefined, '']);
const listenHost = process.env.XWAY_BENCH_LISTEN_HOST;
const connectHost = process.env.XWAY_BENCH_CONNECT_HOST;

if (listenHost) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const [first, second] = args;
    if (typeof first === 'object' && first !== null && 'port' in first && LOOPBACK.has((first as net.ListenOptions).host)) {
      args[0] = { ...(first as net.ListenOptions), host: listenHost };
    } else if (typeof first === 'number' && typeof second === 'string' && LOOPBACK.has(second)) {
      args[1] = listenHost;
    }
    return listen.apply(this, args as Parameters<typeof listen>);
  } as typeof listen;
}

if (connectHost) {
  // Options objects with a port (not a Unix socket path) to loopback go to the server's address.
  const redirect = (args: unknown[]) => {
    const [first] = args;
    if (typeof first === 'object' && first !== null && 'port' in first && !('path' in first) && LOOPBACK.has((first as { host?: string }).host)) {
      args[0] = { ...first, host: connectHost };
    }
    return args;
  };
  const netConnect = net.connect;
  const patched = ((...args: unknown[]) => (netConnect as (...a: unknown[]) => net.Socket)(...redirect(args))) as typeof net.connect;
  net.connect = patched;
  net.createConnection = patched;
  const x = xway as { connect: (...a: unknown[]) => unknown; createConnection: (...a: unknown[]) => unknown };
  const xwayConnect = x.connect;
  x.connect = x.createConnection = (...args: unknown[]) => xwayConnect(...redirect(args));
}

await import('./peer.js');
