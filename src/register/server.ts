// The server half of the preload: every net.Server — and so every http, https, tls, http2 server
// and whatever is built on them (express, fastify, ws, grpc-js) — that listens on a TCP port also
// opens a ring endpoint for that port once the TCP listen succeeded (socket/endpoint.ts, the same
// code XwayServer uses). Ring connections are handed to the server exactly as net hands it a TCP
// connection.

import net from 'node:net';
import { heavy } from './lazy.js';
import { whenBound } from '../socket/when-bound.js';
import { debug, hostPort } from '../switch/debug.js';

const kNoRegister = Symbol.for('xway.noRegister');

interface ServerInternals extends net.Server {
  [kNoRegister]?: boolean;
}

export function patchServer(): void {
  const proto = net.Server.prototype as ServerInternals;
  const { listen, close, ref, unref } = net.Server.prototype;

  proto.listen = function (this: ServerInternals, ...args: unknown[]) {
    const result = (listen as (...a: unknown[]) => net.Server).apply(this, args);
    if (!this[kNoRegister]) whenBound(this, args, () => startEndpoint(this));
    return result;
  } as typeof proto.listen;

  proto.close = function (this: ServerInternals, ...args: unknown[]) {
    if (!this[kNoRegister]) heavy().closeRingEndpoint(this);
    return (close as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof proto.close;

  proto.ref = function (this: ServerInternals) {
    if (!this[kNoRegister]) heavy().refRingEndpoint(this, true);
    return ref.call(this) as ServerInternals;
  };

  proto.unref = function (this: ServerInternals) {
    if (!this[kNoRegister]) heavy().refRingEndpoint(this, false);
    return unref.call(this) as ServerInternals;
  };
}

function startEndpoint(server: ServerInternals): void {
  const address = server.address();
  if (!address || typeof address !== 'object' || !server.listening) return; // a pipe: not ours
  // In a cluster primary, the round-robin scheduler listens through a net.Server of its own whose
  // only 'connection' listener is node's internal assert.fail: it hands TCP handles to the workers,
  // and the workers' servers open the ring endpoint instead.
  if (isRoundRobinServer(server)) return;
  const where = hostPort(address.address, address.port);
  const h = heavy();
  const unavailable = h.hostUnavailableReason();
  if (unavailable !== null) {
    debug(`listen ${where} -> tcp only (${unavailable})`);
    return;
  }
  try {
    if (!h.openRingEndpoint(server)) return;
  } catch (err) {
    // TCP keeps serving; co-resident clients simply use it too.
    debug(`listen ${where} -> tcp only (pid ${process.pid}: ${(err as Error).message})`);
    return;
  }
  debug(`listen ${where} -> ring endpoint (pid ${process.pid})`);
}

function isRoundRobinServer(server: net.Server): boolean {
  if (process.env.NODE_UNIQUE_ID !== undefined) return false; // a cluster worker
  const listeners = server.listeners('connection');
  return listeners.length === 1 && listeners[0].name === 'fail';
}
