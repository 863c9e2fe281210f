// A small container lab for the tests in this directory: real Linux namespaces, made and removed
// by the test itself.
//
//   createLab({ containers: { a: {...}, b: {...} } }) makes
//   - one network namespace per container, with an interface eth0 holding its 192.0.2.x/24 address
//     (documentation range), joined by veth pairs to a bridge in a "switch" namespace of their own —
//     the shape of Docker's bridge network. Nothing is created in the namespace the tests run in:
//     every address, interface and route lives in the lab's namespaces, and the only addresses a
//     test reaches are these;
//   - a tmpfs, the shared registry: each container that shares it sees it at /run/xway (as a
//     Compose volume or a Kubernetes emptyDir would be mounted), XWAY_DIR=/run/xway;
//   - for each program run in a container (lab.start(), lab.agent()): its own network (the
//     container's), PID, mount, UTS and IPC namespaces (`ip netns exec <ns> unshare --pid --mount
//     --uts --ipc --fork --mount-proc --kill-child`), a private /tmp and /run (so the default
//     registry directory, /tmp/xway-<uid>, is never shared by accident), a host name of its own,
//     and optionally another uid/gid/groups (setpriv; numeric ids, no passwd entries needed);
//   - an /etc/hosts in which every container is <name>.lab (as Compose's service names resolve).
//
// lab.close() removes everything (kills the programs, deletes the namespaces — which deletes their
// veths —, unmounts the tmpfs, removes the directory); an exit handler does it too if a test
// throws past its cleanup, and a lab left by a run that was killed (its pid is gone) is removed by
// the next createLab().
//
// Programs talk to the test over stdout JSON lines (see fixtures/agent.mjs and Agent below).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT = path.join(ROOT, 'test/containers/fixtures/agent.mjs');
export const PRELOAD = path.join(ROOT, 'dist/register/index.js');
/** Where each container sees the shared registry. */
export const SHARED_MOUNT = '/run/xway';
/** Every lab's names start with this and the creating process's pid. */
const PREFIX = 'xct';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- can a lab be made here? ---------------------------------------------------------------------

let unavailable;

/** Why no lab can be made on this machine (not Linux, not root, a tool missing, namespaces not
 *  allowed), or null. Tried once, with a throwaway namespace. */
export function labUnavailableReason() {
  if (unavailable !== undefined) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe() {
  if (process.platform !== 'linux') return `network namespaces are Linux's (this is ${process.platform})`;
  if (process.geteuid() !== 0) return `making network namespaces needs root (running as uid ${process.geteuid()})`;
  for (const [tool, args] of [['ip', ['-V']], ['unshare', ['--version']], ['setpriv', ['--version']], ['mount', ['--version']]]) {
    const r = spawnSync(tool, args, { stdio: 'ignore' });
    if (r.error || r.status !== 0) return `${tool} is not available (${r.error?.code ?? `exit ${r.status}`}); install iproute2 and util-linux`;
  }
  if (!fs.existsSync(path.join(ROOT, 'dist/index.js'))) return 'dist/ is not built (npm run build)';
  const ns = `${PREFIX}${process.pid}probe`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge'], { stdio: 'pipe' });
    const r = spawnSync('ip', ['netns', 'exec', ns, 'unshare', '--pid', '--mount', '--uts', '--fork', '--mount-proc', 'true'], { stdio: 'pipe' });
    if (r.status !== 0) return `unshare --pid --mount --uts inside a network namespace failed: ${String(r.stderr).trim()}`;
    return null;
  } catch (err) {
    return `cannot make a network namespace with a bridge here: ${String(err.stderr ?? err.message).trim()}`;
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

// ---- leftovers of runs that were killed --------------------------------------------------------

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

function sweepLeftovers() {
  const mine = new RegExp(`^${PREFIX}(\\d+)`);
  let names = [];
  try { names = fs.readdirSync('/run/netns'); } catch { /* none */ }
  for (const name of names) {
    const m = mine.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    removeBase(path.join(os.tmpdir(), name));
  }
}

function removeBase(base) {
  // Every mount below base, deepest first (a tmpfs, and nothing else is mounted there).
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && (m === base || m.startsWith(base + '/')));
  for (const m of mounts.sort((x, y) => y.length - x.length)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  fs.rmSync(base, { recursive: true, force: true });
}

// ---- the lab --------------------------------------------------------------------------------------

const labs = new Set();
process.on('exit', () => {
  for (const lab of labs) lab.closeSync();
});
// Ctrl-C or a kill of the test run: clean up, then die of the signal as the run would have.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const lab of labs) lab.closeSync();
    process.kill(process.pid, signal);
  });
}

let labCount = 0;

/**
 * Makes a lab. `containers`: { name: { address, shared = true } }: address from 192.0.2.0/24
 * (default 192.0.2.101, .102, … in order); shared: whether /run/xway is the shared registry (else
 * an empty private directory). `registry`: owner, group and mode of the shared registry's root
 * ({ uid = 0, gid = 0, mode = 0o700 }: owner-only, root's, as xway makes its own).
 */
export function createLab({ containers, registry = {} }) {
  const why = labUnavailableReason();
  if (why) throw new Error(`no lab: ${why}`);
  sweepLeftovers();
  const id = `${PREFIX}${process.pid}${String.fromCharCode(97 + (labCount++ % 26))}`; // xct<pid><letter>, short
  const base = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-${process.pid}-`));
  const lab = new Lab(id, base);
  labs.add(lab);
  try {
    lab.setUp(containers, registry);
  } catch (err) {
    lab.closeSync();
    throw err;
  }
  return lab;
}

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });

class Lab {
  constructor(id, base) {
    this.id = id;
    this.base = base;
    /** The shared registry as the test (outside every container) sees it. */
    this.shared = path.join(base, 'shared');
    this.switchNs = `${id}sw`;
    this.containers = {};
    this.programs = new Set();
    this.closed = false;
  }

  setUp(containers, registry) {
    fs.mkdirSync(this.shared);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', `${this.id}-registry`, this.shared], { stdio: 'pipe' });
    this.setRegistry(registry);
    // Every container's network namespace, bound where a program started with seeNamespaces can
    // enter it (nsenter --net=/run/xct-netns/<name>): for a role that must sit in another
    // container's network namespace (the semantics suite's server role).
    fs.mkdirSync(path.join(this.base, 'netns'));
    ip('netns', 'add', this.switchNs);
    ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    let n = 0;
    for (const [name, spec] of Object.entries(containers)) {
      const address = spec.address ?? `192.0.2.${101 + n}`;
      if (!/^192\.0\.2\.(\d+)$/.test(address) || Number(address.split('.')[3]) < 3 || Number(address.split('.')[3]) > 254) {
        throw new Error(`container ${name}: ${address} is not a 192.0.2.3–254 address`); // .1/.2: keep clear of anything outside
      }
      const ns = `${this.id}${n}`;
      ip('netns', 'add', ns);
      // Both ends are made inside the lab's namespaces: the switch end in the switch namespace,
      // the other directly in the container's.
      ip('-n', this.switchNs, 'link', 'add', `p${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('-n', this.switchNs, 'link', 'set', `p${n}`, 'master', 'br0', 'up');
      ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // A container that does not share the registry gets an empty directory of its own there.
      const own = path.join(this.base, `own-${name}`);
      fs.mkdirSync(own, { mode: 0o700 });
      const bound = path.join(this.base, 'netns', name);
      fs.writeFileSync(bound, '');
      execFileSync('mount', ['--bind', `/run/netns/${ns}`, bound], { stdio: 'pipe' });
      this.containers[name] = { name, ns, address, shared: spec.shared !== false, own, hostname: `${this.id}-${name}`, inode: fs.statSync(`/run/netns/${ns}`).ino };
      n++;
    }
    // Every container's name resolves in every container, as Docker's DNS resolves service names:
    // <name>.lab (and the host name) to its address, from an /etc/hosts of the lab's own.
    const hosts = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback',
      ...Object.values(this.containers).map((c) => `${c.address} ${c.name}.lab ${c.hostname}`)];
    fs.writeFileSync(path.join(this.base, 'hosts'), hosts.join('\n') + '\n');
  }

  /** Sets the owner, group and mode of the shared registry's root directory. */
  setRegistry({ uid = 0, gid = 0, mode = 0o700 } = {}) {
    fs.chownSync(this.shared, uid, gid);
    fs.chmodSync(this.shared, mode);
  }

  /** Removes everything in the shared registry (between tests). */
  clearRegistry() {
    for (const name of fs.readdirSync(this.shared)) fs.rmSync(path.join(this.shared, name), { recursive: true, force: true });
  }

  /** The shared registry's entries as the test sees them: name → lstat. */
  registryFiles() {
    const out = new Map();
    for (const name of fs.readdirSync(this.shared)) {
      try { out.set(name, fs.lstatSync(path.join(this.shared, name))); } catch { /* gone meanwhile */ }
    }
    return out;
  }

  /**
   * Starts `node [nodeArgs] file [args]` in container `name` (a Program). Options: uid, gid,
   * groups (numbers; default root), env (added to a clean environment: XWAY_DIR=/run/xway unless
   * env.XWAY_DIR is null), nodeArgs, seeNamespaces (every container's network namespace at
   * /run/xct-netns/<name>, to nsenter).
   */
  start(name, file, { args = [], nodeArgs = [], env = {}, uid, gid, groups = [], seeNamespaces = false } = {}) {
    const c = this.containers[name];
    if (!c) throw new Error(`no container ${name} in this lab`);
    const clean = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!/^(XWAY|NODE_OPTIONS|FORCE_COLOR|NO_COLOR|XDG_RUNTIME_DIR)/.test(k)) clean[k] = v;
    }
    const environment = { ...clean, HOME: '/tmp', XWAY_DIR: SHARED_MOUNT, ...env };
    for (const [k, v] of Object.entries(environment)) if (v === null || v === undefined) delete environment[k];
    // Inside the new mount namespace (private propagation: nothing leaks back out): a private /run
    // with /run/xway bound to the shared registry (or to an empty directory), then a private /tmp.
    // The source directories are reached before /tmp is covered.
    const script = [
      'set -e',
      'hostname "$XCT_HOSTNAME"',
      'mount -t tmpfs -o size=16m,mode=0755 xct-run /run',
      `mkdir -p ${SHARED_MOUNT}`,
      `mount --bind "$XCT_REGISTRY" ${SHARED_MOUNT}`,
      'if [ -n "$XCT_NETNS" ]; then mkdir -p /run/xct-netns && mount --rbind "$XCT_NETNS" /run/xct-netns; fi',
      'mount --bind "$XCT_HOSTS" /etc/hosts',
      // A checkout under /tmp (a CI clone) would vanish under the private /tmp: it is bound back.
      'if [ -n "$XCT_PKG" ]; then mkdir -p /run/xct-pkg && mount --bind "$XCT_PKG" /run/xct-pkg; fi',
      'mount -t tmpfs -o size=512m,mode=1777 xct-tmp /tmp',
      'if [ -n "$XCT_PKG" ]; then mkdir -p "$XCT_PKG" && mount --bind /run/xct-pkg "$XCT_PKG"; fi',
      'unset XCT_HOSTNAME XCT_REGISTRY XCT_NETNS XCT_HOSTS XCT_PKG',
      'exec "$@"',
    ].join('\n');
    const identity = uid === undefined && gid === undefined && groups.length === 0 ? [] : [
      'setpriv', `--reuid=${uid ?? 0}`, `--regid=${gid ?? uid ?? 0}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', '--',
    ];
    const argv = [
      'netns', 'exec', c.ns, 'unshare', '--pid', '--mount', '--uts', '--ipc', '--fork', '--mount-proc', '--kill-child', '--propagation', 'private', '--',
      'sh', '-c', script, 'sh', ...identity, process.execPath, ...nodeArgs, file, ...args,
    ];
    const child = spawn('ip', argv, {
      cwd: ROOT,
      env: { ...environment, XCT_HOSTS: path.join(this.base, 'hosts'), XCT_HOSTNAME: c.hostname, XCT_REGISTRY: c.shared ? this.shared : c.own, ...(ROOT.startsWith('/tmp/') ? { XCT_PKG: ROOT } : {}), ...(seeNamespaces ? { XCT_NETNS: path.join(this.base, 'netns') } : {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const program = new Program(child, c, file);
    this.programs.add(program);
    program.exited.then(() => this.programs.delete(program));
    return program;
  }

  /** Starts the agent (fixtures/agent.mjs) in container `name`; resolves once it is ready. */
  async agent(name, options = {}) {
    const agent = new Agent(this.start(name, AGENT, options));
    await agent.ready;
    return agent;
  }

  /** Kills every program still running, waits for them. */
  async stopAll() {
    await Promise.all([...this.programs].map((p) => p.kill()));
  }

  async close() {
    await this.stopAll();
    this.closeSync();
  }

  closeSync() {
    if (this.closed) return;
    this.closed = true;
    labs.delete(this);
    for (const p of this.programs) p.killSync();
    for (const c of Object.values(this.containers)) spawnSync('ip', ['netns', 'del', c.ns], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', this.switchNs], { stdio: 'ignore' });
    removeBase(this.base);
  }
}

/** The pids of the processes whose parent is `pid` (from /proc: no CONFIG_PROC_CHILDREN needed). */
function childrenOf(pid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** A program running in a container: its stdout lines, its stderr text, and how it ended. */
export class Program {
  constructor(child, container, file) {
    this.child = child;
    this.container = container;
    this.file = file;
    this.stderr = '';
    this.lines = [];
    this.waiters = [];
    child.stderr.setEncoding('utf8').on('data', (d) => { this.stderr += d; });
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.lines.push(line);
      for (const w of [...this.waiters]) w();
    });
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    this.exitStatus = null;
    this.exited.then((s) => { this.exitStatus = s; for (const w of [...this.waiters]) w(); });
  }

  /** Resolves with the first stdout line (from `from` on) that `match` accepts. */
  line(match = () => true, ms = 15_000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.lines.length; i++) {
          if (match(this.lines[i])) return finish(() => resolve(this.lines[i]));
        }
        if (this.exitStatus) finish(() => reject(new Error(`${path.basename(this.file)} in ${this.container.name} ended (${JSON.stringify(this.exitStatus)}) before the line expected; stderr: ${this.stderr.slice(-2000)}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${path.basename(this.file)} in ${this.container.name}: no line expected within ${ms} ms; stderr: ${this.stderr.slice(-2000)}`))), ms);
      const finish = (f) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        f();
      };
      this.waiters.push(check);
      check();
    });
  }

  /** The host pid of the program itself (node, pid 1 of its PID namespace; the spawned process is
   *  `unshare`, its parent). */
  pid() {
    if (this.nodePid) return this.nodePid;
    const [pid] = childrenOf(this.child.pid);
    if (!pid) throw new Error(`the program in ${this.container.name} has no process (it ended?)`);
    this.nodePid = pid;
    return pid;
  }

  /** SIGKILLs the program (its whole PID namespace dies with it), waits for it, bounded. */
  async kill() {
    this.killSync();
    let timer;
    await Promise.race([this.exited, new Promise((resolve) => { timer = setTimeout(resolve, 5000); })]);
    clearTimeout(timer);
  }

  /** SIGKILLs the program itself (not unshare), as a container's main process dies; returns the
   *  wall-clock time (ms, as the agents log) the signal was sent at. */
  sigkill() {
    const pid = this.pid();
    const at = performance.timeOrigin + performance.now();
    process.kill(pid, 'SIGKILL');
    return at;
  }

  killSync() {
    if (this.exitStatus) return;
    // unshare --kill-child: SIGKILL to unshare is SIGKILL to the program.
    try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** The test's end of fixtures/agent.mjs. */
export class Agent {
  constructor(program) {
    this.program = program;
    this.container = program.container;
    this.nextId = 1;
    this.events = [];
    this.pending = new Map();
    this.ready = program.line((l) => l.includes('"event":"ready"'), 20_000).then(() => undefined);
    this.seen = 0;
    this.eventWaiters = [];
    program.waiters.push(() => this.drain());
    program.exited.then(() => {
      for (const [, p] of this.pending) p.reject(new Error(`the agent in ${this.container.name} ended (${JSON.stringify(program.exitStatus)}); stderr: ${program.stderr.slice(-2000)}`));
      this.pending.clear();
    });
  }

  drain() {
    for (; this.seen < this.program.lines.length; this.seen++) {
      let m;
      try { m = JSON.parse(this.program.lines[this.seen]); } catch { continue; }
      if (m.event) {
        this.events.push(m);
        for (const w of [...this.eventWaiters]) w();
      } else if (this.pending.has(m.id)) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if ('error' in m) p.reject(new Error(`${p.cmd} in ${this.container.name}: ${m.error}`));
        else p.resolve(m.ok);
      }
    }
  }

  /** Sends a command; resolves with its answer (bounded by `ms`). */
  ask(cmd, args = {}, ms = 20_000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.program.exitStatus) return reject(new Error(`the agent in ${this.container.name} has ended; stderr: ${this.program.stderr.slice(-2000)}`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${cmd} in ${this.container.name}: no answer within ${ms} ms; stderr: ${this.program.stderr.slice(-2000)}`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer, cmd });
      this.program.child.stdin.write(JSON.stringify({ id, cmd, ...args }) + '\n');
    });
  }

  /** Resolves with the first event named `name` that `match` accepts (bounded by `ms`). */
  event(name, match = () => true, ms = 15_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const e = this.events.find((x) => x.event === name && match(x));
        if (!e) return;
        clearTimeout(timer);
        this.eventWaiters = this.eventWaiters.filter((w) => w !== check);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.eventWaiters = this.eventWaiters.filter((w) => w !== check);
        reject(new Error(`no '${name}' event in ${this.container.name} within ${ms} ms; stderr: ${this.program.stderr.slice(-2000)}`));
      }, ms);
      this.eventWaiters.push(check);
      check();
    });
  }

  get stderr() {
    return this.program.stderr;
  }

  pid() {
    return this.program.pid();
  }

  kill() {
    return this.program.kill();
  }

  sigkill() {
    return this.program.sigkill();
  }
}

export { sleep };
