// The peer side of `xway bench --test conns` / `conns100k` (see conns.ts for what is measured).
// A server peer listens on one or more ports and either answers each connection's 1-byte request
// and closes (parallel) or echoes (scale); a client peer opens connections and holds them, moves
// bytes through all of them, closes them, and answers probes of its own descriptors, memory and
// CPU time — read from /proc/self, so the numbers are the kernel's.

import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import xway from '../../index.js';
import type { Opened, PeerAddress, Probe, Spec, Traffic } from './spec.js';

type AnySocket = net.Socket & { transport?: string };
type Listening = net.Server & { close(cb?: () => void): unknown };

const now = () => performance.now();

/** Descriptors, memory and CPU time of this process (memory after a full collection, when the
 *  peer runs with --expose-gc, as the bench's peers do: garbage is not a connection's cost), unless
 *  `collect` is false. */
export function probe(connections: number, collect = true): Probe {
  const cpu = process.cpuUsage(); // before the collection, which is the probe's cost, not the peer's
  const gc = collect ? (globalThis as { gc?: () => void }).gc : undefined;
  gc?.();
  gc?.();
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  let linkKiB = 0;
  let inLink = false;
  // smaps: a header line per mapping (its last field the name), then "Key: value kB" lines.
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inLink = line.includes('xway-link');
    else if (inLink && line.startsWith('Rss:')) linkKiB += Number(line.split(/\s+/)[1]);
  }
  const after = process.cpuUsage();
  return {
    cpuUs: cpu.user + cpu.system,
    cpuAfterUs: after.user + after.system,
    fds: readdirSync('/proc/self/fd').length,
    rssKiB: kib('VmRSS'),
    shmemKiB: kib('RssShmem'),
    linkKiB,
    connections,
  };
}

// ---- the server ----------------------------------------------------------------------------------

export class ConnsServer {
  readonly servers: Listening[] = [];
  readonly sockets = new Set<AnySocket>();
  transport = '';
  error: Error | null = null;

  constructor(readonly spec: Spec) {}

  /** Listens on spec.ports ports (1 by default). */
  async listen(): Promise<PeerAddress> {
    const ports: number[] = [];
    for (let i = 0; i < (this.spec.ports ?? 1); i++) {
      const server = (this.spec.transport === 'ring'
        ? xway.createServer({ transport: 'force', maxRingCapacity: Math.max(this.spec.ringCapacity, 16 << 20) }, (s) => this.#accept(s as AnySocket))
        : net.createServer((s) => this.#accept(s as AnySocket))) as Listening;
      server.on('xwayError', (err: Error) => { this.error ??= new Error(`the ring endpoint could not be registered: ${err.message}`); });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // A backlog of 4096 for both: 1,000 connections at once must not overflow TCP's queue.
        server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => { server.off('error', reject); resolve(); });
      });
      server.on('error', (err) => { this.error ??= err; });
      ports.push((server.address() as net.AddressInfo).port);
      this.servers.push(server);
    }
    return ports.length === 1 ? { port: ports[0] } : { ports };
  }

  #accept(sock: AnySocket): void {
    this.sockets.add(sock);
    this.transport ||= sock.transport ?? this.spec.transport;
    if (this.spec.transport === 'ring' && sock.transport !== 'ring') this.error ??= new Error(`ring asked for, but a connection is carried by ${sock.transport ?? 'net'}`);
    if (this.spec.transport === 'tcp') sock.setNoDelay(true);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => { /* a client's reset is its business */ });
    if (this.spec.test === 'conns-parallel') {
      let got = 0;
      const response = Buffer.alloc(this.spec.response, 0x72);
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= this.spec.request) sock.end(response); // the server closes first, as crr's does
      });
    } else {
      sock.on('data', (d: Buffer) => sock.write(d));
      sock.on('end', () => sock.end());
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => { server.close(() => resolve()); })));
  }
}

// ---- the client ----------------------------------------------------------------------------------

interface Held {
  sock: AnySocket;
  chunks: Buffer[];
  bytes: number;
  onData: (() => void) | null;
}

export class ConnsClient {
  readonly held: Held[] = [];
  #next = 0;

  #connect(spec: Spec, address: PeerAddress): AnySocket {
    let port: number;
    if ('ports' in address) port = address.ports[this.#next++ % address.ports.length];
    else if ('port' in address) port = address.port;
    else return net.connect(address) as AnySocket;
    if (spec.transport === 'ring') {
      return xway.connect({ port, host: '127.0.0.1', transport: 'force', ringCapacity: spec.ringCapacity || undefined }) as AnySocket;
    }
    return net.connect({ port, host: '127.0.0.1' }) as AnySocket;
  }

  /** Opens `n` more connections, at most `window` set-ups in flight, and holds them. */
  async open(spec: Spec, address: PeerAddress, n: number, window: number): Promise<Opened> {
    const result: Opened = { ms: 0, ok: 0, failed: 0, firstError: '', transports: {} };
    const t0 = now();
    let started = 0;
    const one = () => new Promise<void>((resolve) => {
      const sock = this.#connect(spec, address);
      const h: Held = { sock, chunks: [], bytes: 0, onData: null };
      let connected = false;
      let counted = false;
      sock.once('connect', () => {
        connected = true;
        if (spec.transport === 'tcp') sock.setNoDelay(true);
        const t = sock.transport ?? spec.transport;
        result.transports[t] = (result.transports[t] ?? 0) + 1;
        result.ok++;
        this.held.push(h);
        sock.on('data', (d: Buffer) => { h.chunks.push(d); h.bytes += d.length; h.onData?.(); });
        resolve();
      });
      sock.on('error', (err) => {
        if (connected || counted) return; // after connect: the connection closes, and traffic reports it
        counted = true;
        result.failed++;
        result.firstError ||= err.message;
        resolve();
      });
    });
    const worker = async () => {
      while (started < n) {
        started++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(window, n)) }, worker));
    result.ms = now() - t0;
    return result;
  }

  /** Every held connection sends `bytes` of its own and reads them back; every byte compared. */
  async traffic(bytes: number): Promise<Traffic> {
    const t0 = now();
    const source = Buffer.alloc(65536 + bytes);
    for (let i = 0, x = 2463534242; i < source.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; source[i] = x & 0xff; }
    const out: Traffic = { ms: 0, bad: 0, failed: 0, firstError: '' };
    await Promise.all(this.held.map((h, i) => new Promise<void>((resolve) => {
      const payload = Buffer.from(source.subarray((i * 61) % 65536, (i * 61) % 65536 + bytes));
      payload.writeUInt32LE(i, 0);
      const finish = (error?: Error) => {
        h.onData = null;
        h.sock.off('close', onClose);
        if (error) {
          out.failed++;
          out.firstError ||= error.message;
        } else {
          const got = Buffer.concat(h.chunks);
          if (!got.subarray(0, bytes).equals(payload)) out.bad++;
          h.chunks = got.length > bytes ? [got.subarray(bytes)] : [];
          h.bytes = got.length - bytes;
        }
        resolve();
      };
      const onClose = () => finish(new Error('closed before its echo came back'));
      h.sock.once('close', onClose);
      h.onData = () => { if (h.bytes >= bytes) finish(); };
      h.sock.write(payload);
      h.onData();
    })));
    out.ms = now() - t0;
    return out;
  }

  /** Closes every held connection (FIN) and waits for them all to close. */
  async closeAll(): Promise<number> {
    const t0 = now();
    const all = this.held.splice(0);
    await Promise.all(all.map((h) => new Promise<void>((resolve) => {
      if (h.sock.destroyed) return resolve();
      h.sock.once('close', () => resolve());
      h.sock.end();
    })));
    return now() - t0;
  }
}

/** `n` clients at once, each: connect, `request` bytes, `response` bytes back, close (the server
 *  closes first). Resolves with how long the last took to finish, and how many went wrong. */
export function parallel(spec: Spec, address: PeerAddress, n: number): Promise<Opened> {
  const result: Opened = { ms: 0, ok: 0, failed: 0, firstError: '', transports: {} };
  const request = Buffer.alloc(spec.request, 0x71);
  const t0 = now();
  const port = 'port' in address ? address.port : 0;
  return new Promise((resolve) => {
    let left = n;
    const done = () => {
      if (--left > 0) return;
      result.ms = now() - t0;
      resolve(result);
    };
    for (let i = 0; i < n; i++) {
      const sock = (spec.transport === 'ring'
        ? xway.connect({ port, host: '127.0.0.1', transport: 'force', ringCapacity: spec.ringCapacity || undefined })
        : net.connect({ port, host: '127.0.0.1' })) as AnySocket;
      let got = 0;
      let failed = false;
      sock.once('connect', () => {
        if (spec.transport === 'tcp') sock.setNoDelay(true);
        const t = sock.transport ?? spec.transport;
        result.transports[t] = (result.transports[t] ?? 0) + 1;
        sock.write(request);
      });
      sock.on('data', (d: Buffer) => { got += d.length; });
      sock.once('error', (err) => {
        failed = true;
        result.failed++;
        result.firstError ||= err.message;
      });
      sock.once('close', () => {
        if (!failed) {
          if (got === spec.response) result.ok++;
          else {
            result.failed++;
            result.firstError ||= `got ${got} response bytes, expected ${spec.response}`;
          }
        }
        done();
      });
    }
  });
}
