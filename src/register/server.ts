// The server half of the preload: every net.Server — and so every http, https, tls, http2 server
// and whatever is built on them (express, fastify, ws, grpc-js) — that listens on a TCP port also
// registers an xway endpoint for that port once the TCP listen succeeded. Each ring connection
// set up there is handed to the server exactly as net hands it a TCP connection:
// `server.emit('connection', socket)`, counted in `server._connections` so that maxConnections,
// getConnections() and close() (which waits for open connections) see it.

import net from 'node:net';
import type { ChannelEnd } from '../platform/types.js';
import { heavy } from './lazy.js';
import { debug, hostPort } from './debug.js';

const kNoRegister = Symbol.for('xway.noRegister');
const kEndpoint = Symbol('xway.endpoint');
const kUnref = Symbol('xway.unref');
const kTlsView = Symbol('xway.tlsView');

interface ServerInternals extends net.Server {
  [kNoRegister]?: boolean;
  [kEndpoint]?: { close(): void; ref(): void; unref(): void } | null;
  [kUnref]?: boolean;
  [kTlsView]?: boolean;
  _connections: number;
  _emitCloseIfDrained(): void;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
}

export function patchServer(): void {
  const proto = net.Server.prototype as unknown as ServerInternals;
  const { listen, close, ref, unref } = net.Server.prototype;

  proto.listen = function (this: ServerInternals, ...args: unknown[]) {
    const result = (listen as (...a: unknown[]) => net.Server).apply(this, args);
    // 'listening' always comes later (net emits it asynchronously, in cluster workers after the
    // primary answered); ours runs before the program's own listeners, so the endpoint exists by
    // the time the program announces it listens.
    if (!this[kNoRegister]) this.prependOnceListener('listening', () => startEndpoint(this));
    return result;
  } as typeof proto.listen;

  proto.close = function (this: ServerInternals, ...args: unknown[]) {
    stopEndpoint(this);
    return (close as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof proto.close;

  proto.ref = function (this: ServerInternals) {
    this[kUnref] = false;
    this[kEndpoint]?.ref();
    return ref.call(this) as ServerInternals;
  };

  proto.unref = function (this: ServerInternals) {
    this[kUnref] = true;
    this[kEndpoint]?.unref();
    return unref.call(this) as ServerInternals;
  };
}

function startEndpoint(server: ServerInternals): void {
  const address = server.address();
  if (!address || typeof address !== 'object' || server[kEndpoint] || !server.listening) return; // a pipe: not ours
  // In a cluster primary, the round-robin scheduler listens through a net.Server of its own whose
  // only 'connection' listener is node's internal assert.fail: it hands TCP handles to the workers,
  // and the workers' servers register the ring endpoint instead.
  if (isRoundRobinServer(server)) return;
  const where = hostPort(address.address, address.port);
  const h = heavy();
  const unavailable = h.hostUnavailableReason();
  if (unavailable !== null) {
    debug(`listen ${where} -> tcp only (${unavailable})`);
    return;
  }
  try {
    server[kEndpoint] = h.openRingEndpoint(address, {}, (end) => acceptRing(server, end, address));
  } catch (err) {
    // TCP keeps serving; co-resident clients simply use it too. In a cluster, the first worker to
    // listen owns the port's endpoint and the others land here ('address-in-use').
    debug(`listen ${where} -> tcp only (pid ${process.pid}: ${(err as Error).message})`);
    return;
  }
  if (server[kUnref]) server[kEndpoint]!.unref();
  debug(`listen ${where} -> ring endpoint (pid ${process.pid})`);
}

function isRoundRobinServer(server: net.Server): boolean {
  if (process.env.NODE_UNIQUE_ID !== undefined) return false; // a cluster worker
  const listeners = server.listeners('connection');
  return listeners.length === 1 && listeners[0].name === 'fail';
}

function stopEndpoint(server: ServerInternals): void {
  const endpoint = server[kEndpoint];
  if (!endpoint) return;
  server[kEndpoint] = null;
  endpoint.close();
}

function acceptRing(server: ServerInternals, end: ChannelEnd, address: net.AddressInfo): void {
  const h = heavy();
  const where = hostPort(address.address, address.port);
  if (!server[kEndpoint] || (server.maxConnections !== undefined && server._connections >= server.maxConnections)) {
    end.close();
    if (server[kEndpoint]) {
      // What net does when maxConnections drops a TCP connection.
      const { local, remote } = h.acceptedView(address);
      server.emit('drop', {
        localAddress: local.address, localPort: local.port, localFamily: local.family,
        remoteAddress: remote.address, remotePort: remote.port, remoteFamily: remote.family,
      });
      debug(`accept ${where} <- ring dropped (maxConnections ${server.maxConnections})`);
    }
    return;
  }
  const isTls = typeof (server as unknown as { addContext?: unknown }).addContext === 'function';
  const socket = h.acceptRingSocket(end, address, server.allowHalfOpen);
  (socket as unknown as { server: net.Server }).server = server;
  server._connections++;
  socket.once('close', () => {
    debug(`close ${where} ring connection (pid ${process.pid}, ${socket.bytesRead} bytes in, ${socket.bytesWritten} bytes out)`);
    server._connections--;
    server._emitCloseIfDrained();
  });
  if (server.pauseOnConnect) socket.pause();
  if (isTls && !server[kTlsView]) {
    // A tls.Server wraps the RingSocket in a TLSSocket, whose JS-stream handle knows no addresses:
    // give it the TCP-level view before the program's 'secureConnection' listeners run.
    server[kTlsView] = true;
    server.prependListener('secureConnection', (tlsSocket: net.Socket & { _parent?: unknown }) => {
      const parent = tlsSocket._parent as net.Socket | undefined;
      if (parent instanceof h.RingSocket) {
        Object.assign(tlsSocket, {
          _peername: { address: parent.remoteAddress, port: parent.remotePort, family: parent.remoteFamily },
          _sockname: { address: parent.localAddress, port: parent.localPort, family: parent.localFamily },
        });
      }
    });
  }
  debug(`accept ${where} <- ring (${end.platform} channel, pid ${process.pid})`);
  server.emit('connection', socket);
  // A tls.Server has wrapped the RingSocket in a TLSSocket by now, which copied its allowHalfOpen
  // (the server's): from here the TLSSocket decides when this direction ends, as it does over a
  // TCP handle. The ring below must not end it by itself on the client's FIN, or a response
  // written after the request's end (https with Connection: close) would be lost.
  if (isTls) socket.allowHalfOpen = true;
}
