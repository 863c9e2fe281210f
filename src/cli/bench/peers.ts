// The coordinator's handle on a bench peer: a forked child process (the default), a worker
// thread (--threads), or a peer process another machine or domain runs for us (--peer: a TCP
// control connection to `xway bench --peer-listen` there, JSON lines), spoken to with
// request/reply messages. A peer that dies, or does not answer in time, fails what it was asked
// and is replaced by the caller.

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import type { FromPeer, ToPeer } from './spec.js';
import type { PeerLaunch } from './netns.js';

const PEER_URL = new URL('./peer.js', import.meta.url);

type Pending = { resolve: (m: FromPeer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class Peer {
  readonly name: string;
  readonly #child: ChildProcess | null = null;
  readonly #worker: Worker | null = null;
  readonly #remote: net.Socket | null = null;
  readonly #pending = new Map<number, Pending>();
  #stderr = '';
  #dead: Error | null = null;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  /** `where.launch` (--netns, netns.ts): fork this module with this program and environment
   *  instead; `where.remote` (--peer): the peer runs elsewhere, reached over TCP. */
  constructor(name: string, threads: boolean, where: { launch?: PeerLaunch; remote?: { host: string; port: number } | null } = {}) {
    const { launch, remote } = where;
    this.name = name;
    let ready!: () => void, failed!: (e: Error) => void;
    this.ready = new Promise((res, rej) => { ready = res; failed = rej; });
    this.ready.catch(() => {});
    const onMessage = (m: FromPeer) => {
      if ('ready' in m) return ready();
      if ('fatal' in m) return this.#die(new Error(`${name} peer crashed: ${firstLine(m.fatal)}`));
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(m);
    };
    let exited!: () => void;
    this.exited = new Promise((res) => { exited = res; });
    const onExit = (how: string) => {
      this.#die(new Error(`${name} peer ${how}${this.#stderr ? `: ${lastLine(this.#stderr)}` : ''}`));
      failed(this.#dead!);
      exited();
    };
    if (remote) {
      const socket = net.connect(remote);
      this.#remote = socket;
      socket.setNoDelay(true);
      socket.setEncoding('utf8');
      onJsonLines(socket, (m) => onMessage(m as FromPeer));
      socket.on('error', (err) => { this.#stderr = `${remote.host}:${remote.port}: ${err.message}`; });
      socket.on('close', () => onExit(`at ${remote.host}:${remote.port} is gone`));
    } else if (threads) {
      this.#worker = new Worker(PEER_URL, { stderr: true });
      this.#worker.on('message', onMessage);
      this.#worker.on('error', (err) => this.#die(new Error(`${name} peer crashed: ${err.message}`)));
      this.#worker.stderr.setEncoding('utf8');
      this.#worker.stderr.on('data', (d: string) => { this.#stderr = (this.#stderr + d).slice(-4000); });
      this.#worker.on('exit', (code) => onExit(`exited (code ${code})`));
    } else {
      // --expose-gc: conns measures resident memory after a full collection (conns-peer.ts probe).
      this.#child = fork(launch?.url ?? PEER_URL, [], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [...(launch?.execArgv ?? []), '--expose-gc'], serialization: 'json',
        ...(launch ? { execPath: launch.execPath, env: launch.env } : {}),
      });
      this.#child.on('message', (m) => onMessage(m as FromPeer));
      this.#child.on('error', (err) => this.#die(new Error(`${name} peer: ${err.message}`)));
      this.#child.stderr!.setEncoding('utf8');
      this.#child.stderr!.on('data', (d: string) => { this.#stderr = (this.#stderr + d).slice(-4000); });
      this.#child.on('exit', (code, signal) => onExit(signal ? `was killed (${signal})` : `exited (code ${code})`));
    }
  }

  /** Sends `message` and waits for the reply with the same id. */
  request(message: ToPeer & { id: number }, timeoutMs: number): Promise<FromPeer> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(message.id);
        reject(new Error(`${this.name} peer did not answer '${message.type}' within ${(timeoutMs / 1e3).toFixed(0)} s`));
      }, timeoutMs);
      this.#pending.set(message.id, { resolve, reject, timer });
      this.#post(message);
    });
  }

  #post(message: ToPeer): void {
    if (this.#remote) this.#remote.write(JSON.stringify(message) + '\n');
    else if (this.#worker) this.#worker.postMessage(message);
    else this.#child!.send(message);
  }

  #die(err: Error): void {
    this.#dead ??= err;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(this.#dead);
    }
    this.#pending.clear();
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  /** Asks the peer to leave; kills it if it has not within a second. */
  async close(): Promise<void> {
    if (this.#dead && !this.#child && !this.#worker && !this.#remote) return;
    try { if (!this.#dead) this.#post({ type: 'exit' }); } catch { /* already gone */ }
    const timer = setTimeout(() => this.kill(), 1000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.#remote) this.#remote.destroy(); // the relay there kills its peer process
    else if (this.#worker) void this.#worker.terminate();
    else if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

const firstLine = (s: string) => s.split('\n')[0];

/** Calls `each` with every JSON line that arrives on `socket` (utf8-decoded); a line that is not
 *  JSON ends the connection with the reason. */
function onJsonLines(socket: net.Socket, each: (message: unknown) => void): void {
  let buf = '';
  socket.on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line) continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        socket.destroy(new Error(`not a bench peer message: ${line.slice(0, 80)}`));
        return;
      }
      each(message);
    }
  });
}
const lastLine = (s: string) => {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.at(-1) ?? '';
};

/** `xway bench --peer-listen`: for each control connection, a peer process of our own whose
 *  messages travel as JSON lines over that connection (the coordinator elsewhere uses it as its
 *  server). The peer goes when the connection does. */
export function servePeers(host: string, port: number, log: (line: string) => void): Promise<never> {
  return new Promise((_, reject) => {
    const server = net.createServer((socket) => {
      const who = `${socket.remoteAddress}:${socket.remotePort}`;
      log(`bench peer for ${who}`);
      const child = fork(PEER_URL, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [], serialization: 'json' });
      socket.setNoDelay(true);
      socket.setEncoding('utf8');
      child.on('message', (m) => { if (!socket.destroyed) socket.write(JSON.stringify(m) + '\n'); });
      child.on('exit', () => socket.end());
      onJsonLines(socket, (m) => { if (child.connected) child.send(m as object); });
      socket.on('error', () => {});
      socket.on('close', () => {
        log(`bench peer for ${who}: done`);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
    });
    server.on('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      log(`xway bench: serving bench peers on ${a.address}:${a.port}`);
    });
  });
}
