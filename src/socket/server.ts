// XwayServer: a net.Server that also takes co-resident clients over rings. It listens on TCP as
// net does (remote peers keep connecting there) and, unless transport is 'off', opens a ring
// endpoint for the same port once listening (endpoint.ts); ring connections arrive as
// 'connection' events exactly like TCP ones. Everything else — close(cb), getConnections,
// maxConnections and 'drop', ref/unref, the AbortSignal of listen() — is net.Server's own.

import net from 'node:net';
import { transportPolicy } from '../switch/policy.js';
import type { RingSocket } from './ring-socket.js';
import { closeRingEndpoint, kNoRegister, openRingEndpoint, refRingEndpoint, ringUnavailableReason } from './endpoint.js';
import { markTcp } from './tcp.js';
import { whenBound } from './when-bound.js';

export interface XwayServerOptions extends net.ServerOpts {
  /** 'off' serves TCP only; default from XWAY, else 'auto'. */
  transport?: 'off' | 'auto' | 'force';
  /** Ring capacity (each direction) clients use unless they ask for another: published in the
   *  registry entry. Default 256 KiB. */
  ringCapacity?: number;
  /** Ring capacity granted to clients at most (each direction). Default 16 MiB. */
  maxRingCapacity?: number;
  /** Ring memory (address space) one client thread's link may use; at the limit new connections
   *  use TCP. Default XWAY_RING_MEMORY_PER_LINK, else 8 GiB. */
  ringMemoryPerLink?: number;
}

type ConnectionListener = (socket: net.Socket | RingSocket) => void;

export class XwayServer extends net.Server {
  readonly #options: XwayServerOptions;

  constructor(options: XwayServerOptions = {}, listener?: ConnectionListener) {
    transportPolicy(options.transport); // bad values fail here, not at listen time
    super(options, listener);
    this.#options = options;
    // The preload (xway/register) must not open a second endpoint for this server.
    (this as unknown as Record<symbol, boolean>)[kNoRegister] = true;
    // TCP connections are marked so `socket.transport` says which one carries each connection.
    this.prependListener('connection', (socket: net.Socket) => {
      if (!('transport' in socket)) markTcp(socket);
    });
  }

  override listen(...args: unknown[]): this {
    (super.listen as (...a: unknown[]) => this)(...args);
    whenBound(this, args, () => this.#openEndpoint());
    return this;
  }

  #openEndpoint(): void {
    if (transportPolicy(this.#options.transport) === 'off' || ringUnavailableReason() !== null) return;
    try {
      openRingEndpoint(this, this.#options);
    } catch (err) {
      // TCP keeps serving; co-resident clients will simply use it too.
      this.emit('xwayError', err);
    }
  }

  override close(callback?: (err?: Error) => void): this {
    closeRingEndpoint(this);
    return super.close(callback);
  }

  override ref(): this {
    refRingEndpoint(this, true);
    return super.ref();
  }

  override unref(): this {
    refRingEndpoint(this, false);
    return super.unref();
  }
}
