// One end of an `xway bench` measurement, run as a child process (fork) or a worker thread
// (--threads). The coordinator tells one peer to serve and the other to run the client; both use
// the net API: xway.createServer / xway.connect (transport 'force') for the ring, net over
// 127.0.0.1 for TCP, net over a socket path for Unix sockets.
//
// Each side measures its own CPU time (process.cpuUsage) over its own window and reports it as a
// rate (CPU seconds per wall second), so windows that differ by a few milliseconds between the two
// processes do not matter: the coordinator adds the rates and divides by the throughput.
//
//   stream   client writes `size`-byte chunks for warm-up + duration (as fast as backpressure
//            allows), then ends; the server counts bytes from warm-up on and reports at the end
//   maerts   the same with the server writing and the client counting
//   rr       the client sends `request` bytes, the server answers `response` bytes, one at a time
//   crr      connect, request, response, close (the server closes first), one at a time
//   idle     one byte each way, then both sides measure their CPU time over `duration`

import net from 'node:net';
import { isMainThread, parentPort } from 'node:worker_threads';
import xway from '../../index.js';
import type { CpuRate, FromPeer, PeerAddress, SideResult, Spec, ToPeer } from './spec.js';
import { ConnsClient, ConnsServer, parallel, probe } from './conns-peer.js';

type AnySocket = net.Socket & { transport?: string };
type AnyServer = { close(cb?: () => void): unknown; address(): unknown; on(e: string, f: (...a: any[]) => void): unknown };

const now = () => performance.now();

function post(message: FromPeer): void {
  if (!isMainThread && parentPort) parentPort.postMessage(message);
  else process.send?.(message);
}

class CpuWindow {
  #t0 = 0;
  #c0: NodeJS.CpuUsage | null = null;
  #result: CpuRate | null = null;
  get started(): boolean { return this.#c0 !== null; }
  start(): void {
    if (this.#c0) return;
    this.#t0 = now();
    this.#c0 = process.cpuUsage();
  }
  stop(): CpuRate {
    if (this.#result) return this.#result;
    if (!this.#c0) this.start();
    const c = process.cpuUsage(this.#c0!);
    const windowS = (now() - this.#t0) / 1e3;
    this.#result = { rate: windowS > 0 ? (c.user + c.system) / 1e6 / windowS : 0, windowS };
    return this.#result;
  }
}

/** What a socket says carries it; a ring socket that is not on the ring is an error. */
function checkTransport(sock: AnySocket, spec: Spec): string {
  if (spec.transport === 'ring') {
    if (sock.transport !== 'ring') throw new Error(`ring transport asked for, but the connection is carried by ${sock.transport ?? 'net'}`);
    return 'ring';
  }
  // TCP keeps net's defaults too (no setNoDelay): a number got by a setting users' code does not
  // have would not say what they will see.
  return spec.transport;
}

function connectTo(spec: Spec, address: PeerAddress): AnySocket {
  if (spec.transport === 'ring') {
    const { port } = address as { port: number };
    return xway.connect({ port, host: spec.host || '127.0.0.1', transport: 'force', ringCapacity: spec.ringCapacity || undefined }) as AnySocket;
  }
  if (spec.host && 'port' in address) return net.connect({ port: address.port, host: spec.host }) as AnySocket;
  return net.connect(address as net.NetConnectOpts) as AnySocket;
}

function createServer(spec: Spec, onConnection: (sock: AnySocket) => void): AnyServer {
  if (spec.transport === 'ring') {
    const server = xway.createServer({ transport: 'force', maxRingCapacity: Math.max(spec.ringCapacity, 16 << 20) }, onConnection as (s: unknown) => void);
    server.on('xwayError', (err: Error) => server.emit('error', new Error(`the ring endpoint could not be registered: ${err.message}`)));
    return server as unknown as AnyServer;
  }
  return net.createServer(onConnection);
}

function listen(server: AnyServer, spec: Spec): Promise<PeerAddress> {
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    const s = server as unknown as net.Server;
    const done = () => {
      const a = s.address();
      resolve(typeof a === 'object' && a ? { port: a.port } : { path: spec.socketPath });
    };
    if (spec.transport === 'unix') s.listen(spec.socketPath, done);
    else s.listen(0, spec.host ? '0.0.0.0' : '127.0.0.1', done);
  });
}

// ---- the two halves of a stream ----------------------------------------------------------------

function sendStream(sock: AnySocket, spec: Spec, transport: string, report: (r: SideResult) => void): void {
  const chunk = Buffer.alloc(spec.size, 0x78);
  const start = now();
  const mark = start + spec.warmupMs;
  const deadline = mark + spec.durationMs;
  const batch = Math.max(1, Math.min(64, Math.floor(65536 / spec.size)));
  const cpu = new CpuWindow();
  let sent = 0;
  let ended = false;
  const pump = (): void => {
    for (;;) {
      const t = now();
      if (t >= mark) cpu.start();
      if (t >= deadline) {
        ended = true;
        const rate = cpu.stop();
        sock.end();
        report({ transport, cpu: rate, total: sent });
        return;
      }
      for (let i = 0; i < batch; i++) {
        sent += spec.size;
        if (!sock.write(chunk)) {
          sock.once('drain', pump);
          return;
        }
      }
    }
  };
  sock.on('close', () => { if (!ended) report({ transport, cpu: cpu.stop(), total: sent }); });
  pump();
}

function receiveStream(sock: AnySocket, spec: Spec, transport: string, report: (r: SideResult) => void): void {
  const cpu = new CpuWindow();
  let first = 0, t0 = 0, b0 = 0, bytes = 0;
  sock.on('data', (data: Buffer) => {
    bytes += data.length;
    if (t0 !== 0) return;
    const t = now();
    if (first === 0) first = t;
    if (t >= first + spec.warmupMs) {
      t0 = t;
      b0 = bytes;
      cpu.start();
    }
  });
  sock.on('end', () => {
    const t1 = now();
    if (t0 === 0) { t0 = first || t1; b0 = 0; }
    report({ transport, cpu: cpu.stop(), bytes: bytes - b0, seconds: (t1 - t0) / 1e3, total: bytes });
  });
}

// ---- request/response --------------------------------------------------------------------------

/** Per-transaction times, kept for the mean and the tail. */
class Latencies {
  #v = new Float64Array(1 << 16);
  #n = 0;
  add(us: number): void {
    if (this.#n === this.#v.length) {
      const bigger = new Float64Array(this.#v.length * 2);
      bigger.set(this.#v);
      this.#v = bigger;
    }
    this.#v[this.#n++] = us;
  }
  summary(): { meanUs: number; p50Us: number; p99Us: number } {
    const v = this.#v.subarray(0, this.#n).sort();
    let sum = 0;
    for (const x of v) sum += x;
    const q = (p: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : NaN);
    return { meanUs: v.length ? sum / v.length : NaN, p50Us: q(0.5), p99Us: q(0.99) };
  }
}

function rrClient(sock: AnySocket, spec: Spec, transport: string, report: (r: SideResult) => void): void {
  const request = Buffer.alloc(spec.request, 0x71);
  const cpu = new CpuWindow();
  const lat = new Latencies();
  const start = now();
  const mark = start + spec.warmupMs;
  const stop = mark + spec.durationMs;
  let got = 0, sentAt = 0, t0 = 0, count = 0, done = false;
  const fire = () => {
    sentAt = now();
    sock.write(request);
  };
  sock.on('data', (data: Buffer) => {
    got += data.length;
    if (got < spec.response || done) return;
    got -= spec.response;
    const t = now();
    if (t0 !== 0) {
      count++;
      lat.add((t - sentAt) * 1e3);
      if (t >= stop) {
        done = true;
        const rate = cpu.stop();
        sock.end();
        report({ transport, cpu: rate, transactions: count, seconds: (t - t0) / 1e3, ...lat.summary() });
        return;
      }
    } else if (t >= mark) {
      t0 = t;
      cpu.start();
    }
    fire();
  });
  fire();
}

function rrServer(sock: AnySocket, spec: Spec): void {
  const response = Buffer.alloc(spec.response, 0x72);
  let got = 0;
  sock.on('data', (data: Buffer) => {
    got += data.length;
    while (got >= spec.request) {
      got -= spec.request;
      sock.write(response);
    }
  });
}

function crrClient(spec: Spec, address: PeerAddress, report: (r: SideResult) => void, fail: (e: Error) => void): void {
  const request = Buffer.alloc(spec.request, 0x71);
  const cpu = new CpuWindow();
  const lat = new Latencies();
  const start = now();
  const mark = start + spec.warmupMs;
  const stop = mark + spec.durationMs;
  let t0 = 0, count = 0;
  let seen = spec.transport as string;
  const one = (): void => {
    const began = now();
    let got = 0;
    let failed = false;
    const sock = connectTo(spec, address);
    sock.on('connect', () => {
      try {
        seen = checkTransport(sock, spec);
      } catch (err) {
        failed = true;
        sock.destroy();
        return fail(err as Error);
      }
      sock.write(request);
    });
    sock.on('data', (data: Buffer) => { got += data.length; });
    sock.on('error', (err) => {
      failed = true;
      fail(err);
    });
    sock.on('close', () => {
      if (failed) return;
      if (got !== spec.response) return fail(new Error(`crr: got ${got} response bytes, expected ${spec.response}`));
      const t = now();
      if (t0 !== 0) {
        count++;
        lat.add((t - began) * 1e3);
        if (t >= stop) {
          report({ transport: seen, cpu: cpu.stop(), transactions: count, seconds: (t - t0) / 1e3, ...lat.summary() });
          return;
        }
      } else if (t >= mark) {
        t0 = t;
        cpu.start();
      }
      one();
    });
  };
  one();
}

function crrServer(sock: AnySocket, spec: Spec): void {
  const response = Buffer.alloc(spec.response, 0x72);
  let got = 0;
  sock.on('data', (data: Buffer) => {
    got += data.length;
    if (got >= spec.request) sock.end(response); // the server closes first, as netperf's does
  });
}

// ---- the server side of one measurement ----------------------------------------------------------

interface Serving {
  server: AnyServer;
  result: Promise<SideResult>;
  sockets: Set<AnySocket>;
}

let serving: Serving | null = null;

async function serve(id: number, spec: Spec): Promise<void> {
  let settle!: (r: SideResult) => void, reject!: (e: Error) => void;
  const result = new Promise<SideResult>((res, rej) => { settle = res; reject = rej; });
  result.catch(() => {});
  const sockets = new Set<AnySocket>();
  const cpu = new CpuWindow();
  let transport = spec.transport as string;
  let firstAt = 0;
  let windowEnd: Promise<void> | null = null;
  const timedWindow = () => {
    // rr, crr and idle: the server's window is warm-up + duration from its first connection (idle:
    // from the echo).
    if (windowEnd) return;
    windowEnd = new Promise((res) => {
      setTimeout(() => {
        cpu.start();
        setTimeout(() => { cpu.stop(); res(); }, spec.durationMs);
      }, spec.test === 'idle' ? 0 : spec.warmupMs);
    });
  };
  const server = createServer(spec, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', (err) => reject(err));
    try {
      transport = checkTransport(sock, spec);
    } catch (err) {
      sock.destroy();
      return reject(err as Error);
    }
    if (firstAt === 0) firstAt = now();
    switch (spec.test) {
      case 'stream':
        return receiveStream(sock, spec, transport, (r) => { settle(r); sock.end(); });
      case 'maerts':
        return sendStream(sock, spec, transport, settle);
      case 'rr':
        timedWindow();
        return rrServer(sock, spec);
      case 'crr':
        timedWindow();
        return crrServer(sock, spec);
      case 'idle':
        sock.once('data', (data: Buffer) => {
          sock.write(data);
          timedWindow();
        });
    }
  });
  const address = await listen(server, spec);
  serving = {
    server, sockets,
    result: spec.test === 'stream' || spec.test === 'maerts' ? result
      : Promise.race([result, new Promise<SideResult>((res) => {
        // Reported on 'stop': once the timed window is over.
        stopWaiters.push(async () => {
          if (windowEnd) await windowEnd;
          res({ transport, cpu: cpu.stop() });
        });
      })]),
  };
  post({ id, listening: address });
}

let stopWaiters: (() => void)[] = [];

async function stopServing(id: number): Promise<void> {
  const s = serving;
  serving = null;
  if (!s) return post({ id, error: 'nothing is being served' });
  for (const w of stopWaiters) w();
  stopWaiters = [];
  try {
    const result = await s.result;
    post({ id, result });
  } catch (err) {
    post({ id, error: (err as Error).message });
  } finally {
    for (const sock of s.sockets) sock.destroy();
    await new Promise<void>((res) => { s.server.close(() => res()); });
  }
}

// ---- the client side ----------------------------------------------------------------------------

function run(id: number, spec: Spec, address: PeerAddress): void {
  let finished = false;
  const report = (result: SideResult) => {
    if (finished) return;
    finished = true;
    post({ id, result });
  };
  const fail = (err: Error) => {
    if (finished) return;
    finished = true;
    post({ id, error: err.message });
  };
  if (spec.test === 'crr') return crrClient(spec, address, report, fail);
  const sock = connectTo(spec, address);
  sock.on('error', fail);
  sock.on('connect', () => {
    let transport: string;
    try {
      transport = checkTransport(sock, spec);
    } catch (err) {
      sock.destroy();
      return fail(err as Error);
    }
    switch (spec.test) {
      case 'stream':
        return sendStream(sock, spec, transport, (r) => { report(r); });
      case 'maerts':
        return receiveStream(sock, spec, transport, (r) => { report(r); sock.end(); });
      case 'rr':
        return rrClient(sock, spec, transport, report);
      case 'idle': {
        sock.once('data', () => {
          const cpu = new CpuWindow();
          cpu.start();
          setTimeout(() => {
            report({ transport, cpu: cpu.stop() });
            sock.end();
          }, spec.durationMs);
        });
        sock.write(Buffer.from([1]));
      }
    }
  });
}

// ---- conns (conns-peer.ts) --------------------------------------------------------------------------

let connsServer: ConnsServer | null = null;
const connsClient = new ConnsClient();

async function serveConns(id: number, spec: Spec): Promise<void> {
  const server = new ConnsServer(spec);
  connsServer = server;
  post({ id, listening: await server.listen() });
}

async function stopConns(id: number): Promise<void> {
  const server = connsServer!;
  connsServer = null;
  await server.close();
  if (server.error) post({ id, error: server.error.message });
  else post({ id, result: { transport: server.transport || server.spec.transport, cpu: { rate: 0, windowS: 0 } } });
}

/** Answers `id` with what `work` resolves to, or its error. */
function answer<T>(id: number, work: () => Promise<T>, wrap: (v: T) => FromPeer): void {
  work().then((v) => post(wrap(v)), (err: Error) => post({ id, error: err.message }));
}

// ---- messages from the coordinator ----------------------------------------------------------------

function onMessage(m: ToPeer): void {
  switch (m.type) {
    case 'serve':
      if (m.spec.test === 'conns-parallel' || m.spec.test === 'conns-scale') {
        serveConns(m.id, m.spec).catch((err: Error) => post({ id: m.id, error: err.message }));
        return;
      }
      serve(m.id, m.spec).catch((err: Error) => post({ id: m.id, error: err.message }));
      return;
    case 'open':
      return answer(m.id, () => connsClient.open(m.spec, m.address, m.n, m.window), (opened) => ({ id: m.id, opened }));
    case 'parallel':
      return answer(m.id, () => parallel(m.spec, m.address, m.n), (opened) => ({ id: m.id, opened }));
    case 'traffic':
      return answer(m.id, () => connsClient.traffic(m.bytes), (traffic) => ({ id: m.id, traffic }));
    case 'closeAll':
      return answer(m.id, () => connsClient.closeAll(), (ms) => ({ id: m.id, done: { ms } }));
    case 'probe':
      post({ id: m.id, probe: probe(connsServer ? connsServer.sockets.size : connsClient.held.length) });
      return;
    case 'run':
      try {
        run(m.id, m.spec, m.address);
      } catch (err) {
        post({ id: m.id, error: (err as Error).message });
      }
      return;
    case 'stop':
      if (connsServer) void stopConns(m.id).catch((err: Error) => post({ id: m.id, error: err.message }));
      else void stopServing(m.id);
      return;
    case 'exit':
      process.exit(0);
  }
}

process.on('uncaughtException', (err) => {
  post({ fatal: err.stack ?? String(err) });
  process.exit(1);
});

if (!isMainThread && parentPort) {
  parentPort.on('message', onMessage);
} else {
  process.on('message', (m) => onMessage(m as ToPeer));
  process.on('disconnect', () => process.exit(0)); // the coordinator is gone
}
post({ ready: true });
