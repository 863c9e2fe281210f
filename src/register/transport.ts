// xway.transportOf(socket): which transport carries a connection — 'ring', 'tcp', or null (not a
// TCP-style connection: a Unix socket, an unconnected socket, not a socket at all). Sees through a
// TLSSocket to the socket it wraps, and through a net.Socket the preload made ride a ring.

import net from 'node:net';

/** Set by the preload on a program's net.Socket that rides a RingSocket: that RingSocket. */
export const kRing: unique symbol = Symbol.for('xway.ring') as never;

type Transport = 'ring' | 'tcp' | null;

export function transportOf(socket: unknown): Transport {
  return look(socket, 0);
}

function look(socket: unknown, depth: number): Transport {
  if (socket === null || typeof socket !== 'object' || depth > 4) return null;
  const s = socket as Record<string | symbol, unknown> & { _handle?: { constructor?: { name?: string } } | null };
  const ring = s[kRing];
  if (ring) return look(ring, depth + 1);
  // RingSocket ('ring', or 'tcp' after a fallback) and TCP sockets xway handed out ('tcp').
  const own = s.transport;
  if (own === 'ring' || own === 'tcp') return own;
  // A TLSSocket over another socket (tls.connect({ socket }), or a server's TLSSocket around
  // an accepted connection): the socket underneath decides.
  const parent = s._parent;
  if (parent && parent !== socket && parent instanceof net.Socket) return look(parent, depth + 1);
  if (!(socket instanceof net.Socket)) return null;
  const handle = s._handle?.constructor?.name;
  if (handle === 'TCP' || handle === 'TLSWrap') return 'tcp';
  if (handle === undefined && (socket as net.Socket).remotePort !== undefined) return 'tcp'; // closed, was TCP
  return null;
}
