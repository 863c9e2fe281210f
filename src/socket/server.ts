// XwayServer: a net.Server that also takes co-resident clients over rings. listen() listens on
// TCP as usual (remote peers keep connecting there) and, unless XWAY=off, registers an xway
// endpoint for the same port with a host control socket; each channel set up there becomes a
// RingSocket, emitted as 'connection' exactly like a TCP socket.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ChannelEnd } from '../platform/types.js';
import { transportPolicy } from '../switch/policy.js';
import { RingSocket } from './ring-socket.js';
import { acceptedView, acceptRingSocket, kNoRegister, openRingEndpoint, ringUnavailableReason, type RingEndpoint } from './endpoint.js';
import { markTcp } from './tcp.js';

export interface XwayServerOptions extends net.ServerOpts {
  /** 'off' serves TCP only; default from XWAY, else 'auto'. */
  transport?: 'off' | 'auto' | 'force';
  /** Ring capacity (each direction) clients use unless they ask for another: published in the
   *  registry entry. Default 256 KiB. */
  ringCapacity?: number;
  /** Ring capacity granted to clients at most (each direction). Default 16 MiB. */
  maxRingCapacity?: number;
}

type ConnectionListener = (socket: net.Socket | RingSocket) => void;

export class XwayServer extends EventEmitter {
  readonly #tcp: net.Server;
  readonly #options: XwayServerOptions;
  #ring: RingEndpoint | null = null;
  readonly #ringSockets = new Set<RingSocket>();
  #closing = false;
  #tcpClosed = false;
  maxConnections?: number;

  constructor(options: XwayServerOptions = {}, listener?: ConnectionListener) {
    super();
    this.#options = options;
    transportPolicy(options.transport); // bad values fail here, not at listen time
    this.#tcp = net.createServer(options, (socket) => {
      // maxConnections counts ring and TCP connections together, so net's own check (TCP only,
      // and on the inner server, which never sees the property) cannot apply it: drop here, as net
      // does, with the same 'drop' event. This socket is already counted.
      if (this.maxConnections !== undefined && this.#connectionCount() > this.maxConnections) {
        this.emit('drop', {
          localAddress: socket.localAddress, localPort: socket.localPort, localFamily: socket.localFamily,
          remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, remoteFamily: socket.remoteFamily,
        });
        socket.destroy();
        return;
      }
      markTcp(socket);
      this.emit('connection', socket);
    });
    // The preload (xway/register) must not register this port a second time.
    (this.#tcp as unknown as Record<symbol, boolean>)[kNoRegister] = true;
    if (listener) this.on('connection', listener);
    this.#tcp.on('listening', () => this.#listening());
    this.#tcp.on('error', (err) => this.emit('error', err));
    this.#tcp.on('close', () => {
      this.#tcpClosed = true;
      this.#maybeClosed();
    });
    this.#tcp.on('drop', (data) => this.emit('drop', data));
  }

  /** Same overloads as net.Server.listen. */
  listen(...args: unknown[]): this {
    const options = args[0];
    if (options && typeof options === 'object' && 'signal' in options && options.signal instanceof AbortSignal) {
      options.signal.addEventListener('abort', () => this.close(), { once: true });
    }
    (this.#tcp.listen as (...a: unknown[]) => net.Server)(...args);
    return this;
  }

  #listening(): void {
    const address = this.#tcp.address();
    if (address && typeof address === 'object' && transportPolicy(this.#options.transport) !== 'off' && ringUnavailableReason() === null) {
      try {
        this.#ring = openRingEndpoint(address, this.#options, (end) => this.#acceptRing(end, address));
      } catch (err) {
        // TCP keeps serving; co-resident clients will simply use it too.
        this.emit('xwayError', err);
      }
    }
    this.emit('listening');
  }

  #acceptRing(end: ChannelEnd, address: net.AddressInfo): void {
    const { local, remote } = acceptedView(address);
    if (this.#closing || (this.maxConnections !== undefined && this.#connectionCount() >= this.maxConnections)) {
      end.close();
      // net.Server says so when maxConnections drops a connection; say it for a ring too.
      if (!this.#closing) {
        this.emit('drop', {
          localAddress: local.address, localPort: local.port, localFamily: local.family,
          remoteAddress: remote.address, remotePort: remote.port, remoteFamily: remote.family,
        });
      }
      return;
    }
    const socket = acceptRingSocket(end, address, this.#options.allowHalfOpen);
    this.#ringSockets.add(socket);
    socket.once('close', () => {
      this.#ringSockets.delete(socket);
      this.#maybeClosed();
    });
    if (this.#options.pauseOnConnect) socket.pause();
    this.emit('connection', socket);
  }

  #connectionCount(): number {
    return this.#ringSockets.size + ((this.#tcp as unknown as { _connections?: number })._connections ?? 0);
  }

  close(callback?: (err?: Error) => void): this {
    if (callback) this.once('close', () => callback());
    this.#closing = true;
    this.#ring?.close();
    this.#ring = null;
    this.#tcp.close((err) => {
      if (err && callback) callback(err);
    });
    return this;
  }

  #maybeClosed(): void {
    if (this.#closing && this.#tcpClosed && this.#ringSockets.size === 0) {
      this.#closing = false;
      this.emit('close');
    }
  }

  getConnections(callback: (err: Error | null, count: number) => void): this {
    this.#tcp.getConnections((err, count) => callback(err, err ? 0 : count + this.#ringSockets.size));
    return this;
  }

  address(): net.AddressInfo | string | null {
    return this.#tcp.address();
  }

  get listening(): boolean {
    return this.#tcp.listening;
  }

  ref(): this {
    this.#tcp.ref();
    this.#ring?.ref();
    return this;
  }

  unref(): this {
    this.#tcp.unref();
    this.#ring?.unref();
    return this;
  }
}
