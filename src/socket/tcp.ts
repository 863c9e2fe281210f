// Plain TCP sockets handed out by xway carry `transport: 'tcp'`, so callers can tell them from
// ring sockets (whose `transport` is 'ring') without instanceof.

import type { Socket } from 'node:net';

export function markTcp(socket: Socket): Socket {
  Object.defineProperty(socket, 'transport', { value: 'tcp', enumerable: true });
  return socket;
}
