// dom0's side of the guest-domain tests: starts PV guests with xl (the Debian kernel, dom0's own
// root file system as their ramdisk, a vif on the harness's bridge xenbr0 with an address from
// 192.0.2.0/24) and talks to the agent each one runs (fixtures/agent.js) over TCP.
import net from 'node:net';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const xsRead = (path) => { try { return sh(`xenstore-read ${path}`).trim(); } catch { return null; } };
export const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;
const VIF_SCRIPT = new URL('./vif-xway', import.meta.url).pathname;

export function within(ms, promise, what) {
  let timer;
  return Promise.race([promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); })]);
}

let ramdisk = false;
function buildRamdisk() {
  if (ramdisk) return;
  sh('cd / && (find init dev proc sys tmp -maxdepth 0; find bin lib lib64 mods pkg etc) | cpio -o -H newc > /tmp/domu.cpio 2>/dev/null');
  ramdisk = true;
}

/** Starts a PV guest. `args` go to domu-guest.sh; `ip` gives it a vif on xenbr0. Returns its id. */
export function startDomain(name, args, { ip = null, paused = false, memory = 512 } = {}) {
  buildRamdisk();
  const lines = [
    `name = "${name}"`, 'type = "pv"', 'kernel = "/guest/vmlinuz"', 'ramdisk = "/tmp/domu.cpio"',
    `cmdline = "console=hvc0 rdinit=/init quiet xway_args=${args.join(',')}${ip ? ` xway_ip=${ip}` : ''}"`,
    `memory = ${memory}`, 'vcpus = 1', 'on_poweroff = "destroy"', 'on_crash = "destroy"',
  ];
  if (ip) lines.push(`vif = [ "bridge=xenbr0,script=${VIF_SCRIPT}" ]`);
  fs.writeFileSync(`/tmp/${name}.cfg`, lines.join('\n') + '\n');
  try {
    sh(`xl create ${paused ? '-p ' : ''}/tmp/${name}.cfg`);
  } catch (err) {
    throw new Error(`xl create ${name} failed: ${err.stderr || err.message}`);
  }
  return Number(sh(`xl domid ${name}`).trim());
}

export function destroyDomain(name) {
  try { sh(`xl destroy ${name}`); } catch { /* already gone */ }
}

export function consoleLog(name) {
  try { return fs.readFileSync(`/var/log/xen/console/guest-${name}.log`, 'utf8').slice(-4000); } catch { return '(no console log)'; }
}

/** A process an agent started in its guest. */
class RemoteProc {
  constructor(agent, proc) {
    this.agent = agent;
    this.proc = proc;
    this.lines = [];
    this.stderr = '';
    this.exit = null;
    this.waiters = new Set();
  }
  _push(m) {
    if (m.event === 'line') this.lines.push(m.line);
    else if (m.event === 'stderr') this.stderr = (this.stderr + m.text).slice(-20000);
    else if (m.event === 'exit') this.exit = { code: m.code, signal: m.signal };
    for (const w of [...this.waiters]) w();
  }
  /** The first JSON line with `event` (removed from the queue), waiting up to `ms`. */
  next(event, ms = 30_000) {
    return new Promise((resolve, reject) => {
      const look = () => {
        const i = this.lines.findIndex((l) => l && l.event === event);
        if (i >= 0) { done(); return resolve(this.lines.splice(i, 1)[0]); }
        if (this.exit) { done(); reject(new Error(`${this.agent.name} process exited (${JSON.stringify(this.exit)}) before '${event}'; stderr: ${this.stderr.slice(-1500)}`)); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${this.agent.name}: no '${event}' within ${ms} ms; stderr: ${this.stderr.slice(-1500)}`)); }, ms);
      const done = () => { clearTimeout(timer); this.waiters.delete(look); };
      this.waiters.add(look);
      look();
    });
  }
  exited(ms = 30_000) {
    return within(ms, new Promise((resolve) => {
      const look = () => { if (this.exit) { this.waiters.delete(look); resolve(this.exit); } };
      this.waiters.add(look);
      look();
    }), `${this.agent.name} process exit`);
  }
  input(obj) { return this.agent.request({ op: 'input', proc: this.proc, line: JSON.stringify(obj) }); }
  kill(signal = 'SIGKILL') { return this.agent.request({ op: 'kill', proc: this.proc, signal }).catch(() => {}); }
}

/** The control connection to one guest's agent. */
export class Agent {
  constructor(name, ip, domid) {
    this.name = name;
    this.ip = ip;
    this.domid = domid;
    this.pending = new Map();
    this.procs = new Map();
    this.nextId = 1;
    this.socket = null;
  }

  /** Connects, retrying while the guest boots. */
  async connect(ms = 240_000) {
    const t0 = Date.now();
    for (;;) {
      try {
        await this.#open();
        return this;
      } catch (err) {
        if (xsRead(`/local/domain/${this.domid}/domid`) === null) throw new Error(`guest ${this.name} ended before its agent answered:\n${consoleLog(this.name)}`);
        if (Date.now() - t0 > ms) throw new Error(`guest ${this.name} (${this.ip}): agent not reachable within ${ms} ms (${err.message}):\n${consoleLog(this.name)}`);
        await sleep(1000);
      }
    }
  }

  #open() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.ip, port: 9000, timeout: 3000 });
      let buf = '';
      let hello = false;
      socket.setEncoding('utf8');
      socket.on('timeout', () => socket.destroy(new Error('connect timed out')));
      socket.on('error', (err) => { if (!hello) reject(err); });
      socket.on('close', () => {
        for (const [, p] of this.pending) p.reject(new Error(`agent ${this.name}: control connection closed`));
        this.pending.clear();
        if (!hello) reject(new Error('closed before hello'));
      });
      socket.on('data', (d) => {
        buf += d;
        for (let i; (i = buf.indexOf('\n')) >= 0;) {
          const m = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (m.event === 'hello') {
            hello = true;
            socket.setTimeout(0);
            this.socket = socket;
            resolve();
          } else if (m.event) this.procs.get(m.proc)?._push(m);
          else {
            const p = this.pending.get(m.id);
            this.pending.delete(m.id);
            if (m.error) p?.reject(new Error(`agent ${this.name}: ${m.error}`));
            else p?.resolve(m);
          }
        }
      });
    });
  }

  request(m, ms = 120_000) {
    const id = this.nextId++;
    return within(ms, new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ id, ...m }) + '\n');
    }), `agent ${this.name} ${m.op}`);
  }

  /** `sh -c cmd` in the guest; throws unless it exits 0 (or `ok` says otherwise). */
  async sh(cmd, { ok = true, timeoutMs } = {}) {
    const r = await this.request({ op: 'sh', cmd, timeoutMs }, (timeoutMs ?? 120_000) + 5000);
    if (ok && r.code !== 0) throw new Error(`${this.name}: '${cmd}' exited ${r.code}: ${r.stderr}`);
    return r;
  }

  /** Starts `node ...args` in the guest (cwd /pkg). */
  async spawn(args, env = {}) {
    const r = await this.request({ op: 'spawn', args, env });
    const p = new RemoteProc(this, r.proc);
    this.procs.set(r.proc, p);
    return p;
  }

  close() { this.socket?.destroy(); }
}

/** Boots guests [{name, ip}] running agents, records their addresses with xen-permit.sh, and
 *  returns connected agents by name. */
export async function bootGuests(specs) {
  const agents = {};
  for (const { name, ip } of specs) agents[name] = new Agent(name, ip, startDomain(name, ['agent'], { ip }));
  await Promise.all(Object.values(agents).map((a) => a.connect()));
  sh(`sh ${PERMIT} ${Object.values(agents).map((a) => `${a.domid}=${a.ip}`).join(' ')}`);
  return agents;
}
