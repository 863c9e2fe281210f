// Shared helpers for the native addon tests and their child-process fixtures.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const native = createRequire(import.meta.url)('../../native/build/Release/xway_native.node');

const here = path.dirname(fileURLToPath(import.meta.url));

/** A fresh owner-only temp dir and a socket path inside it. */
export function tempSocket(name = 'ctl.sock') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-native-'));
  return { dir, path: path.join(dir, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Descriptor numbers open in this process right now. */
export function openFds() {
  return fs.readdirSync('/proc/self/fd').map(Number).sort((a, b) => a - b);
}

/** Spawn a fixture in a real child process (no IPC channel, no stdio pipes:
 * the fd-leak checks must see only our own descriptors). */
export function spawnFixture(name, args = [], options = {}) {
  const child = spawn(process.execPath, [path.join(here, 'fixtures', name), ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    ...options,
  });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A CtlSocket speaking JSON messages, with a promise-based receive queue. */
export class Conn {
  constructor(fd) {
    this.queue = [];
    this.waiters = [];
    this.closeCode = undefined; // undefined while open, then null or 'ECODE'
    this.closedAt = 0;
    this.sock = new native.CtlSocket(
      fd,
      (data, fds) => this.#push({ data, fds, msg: tryJson(data) }),
      (code) => {
        this.closeCode = code;
        this.closedAt = performance.now();
        for (const w of this.waiters.splice(0)) w.reject(Object.assign(new Error('ctl closed'), { code }));
        this.onClose?.(code);
      },
    );
  }
  #push(m) {
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.queue.push(m);
  }
  /** Next message: { data: Buffer, fds: number[], msg: parsed JSON or undefined }. */
  next(ms = 3000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeCode !== undefined) return Promise.reject(new Error('ctl closed'));
    return withTimeout(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })), ms, 'ctl message');
  }
  send(obj, fds) {
    this.sock.send(Buffer.from(JSON.stringify(obj)), fds);
  }
  close() {
    this.sock.close();
  }
}

function tryJson(buf) {
  try {
    return JSON.parse(buf.toString());
  } catch {
    return undefined;
  }
}

/** Listen on a fresh socket path; `accept()` resolves with the next connection's fd. */
export function listen() {
  const sock = tempSocket();
  const pending = [];
  const waiters = [];
  const listener = native.ctlListen(sock.path, (fd) => {
    const w = waiters.shift();
    if (w) w(fd);
    else pending.push(fd);
  });
  return {
    ...sock,
    listener,
    accept: (ms = 3000) =>
      pending.length
        ? Promise.resolve(pending.shift())
        : withTimeout(new Promise((r) => waiters.push(r)), ms, 'ctl connection'),
    close() {
      listener.close();
      sock.cleanup();
    },
  };
}
