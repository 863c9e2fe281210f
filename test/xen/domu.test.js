// More than one domain: PV domUs started with xl from this same initramfs (its /init takes the
// domU branch and runs fixtures/domu.js with the arguments on the kernel command line). Each domU
// reports in XenStore under its own data/xway-test.
//  1. a domU client and a dom0 echo server (another dom0 process): 200 kB echoed through pages the
//     domU granted to dom0; then the domU is destroyed with the channel open, and dom0 notices;
//  2. two guests, after dom0's administrator ran scripts/xen-permit.sh: the client domU finds the
//     server domU by address, connects, checks the echo and closes; the server sees it leave.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';

const FIXTURE = new URL('./fixtures/peer.js', import.meta.url).pathname;
const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const read = (path) => { try { return sh(`xenstore-read ${path}`).trim(); } catch { return null; } };

function startPeer(args) {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  child.next = async (event, ms) => {
    for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(50)) {
      const i = lines.findIndex((m) => m.event === event);
      if (i >= 0) return lines.splice(i, 1)[0];
    }
    throw new Error(`server did not report '${event}' within ${ms} ms`);
  };
  return child;
}

let ramdisk = false;
/** Starts a PV domU running fixtures/domu.js `args`; returns its domain id. */
function startDomain(name, args, { paused = false } = {}) {
  if (!ramdisk) {
    // The domU's ramdisk: this dom0's own root file system.
    sh('cd / && (find init dev proc sys tmp -maxdepth 0; find bin lib lib64 mods pkg etc) | cpio -o -H newc > /tmp/domu.cpio 2>/dev/null');
    ramdisk = true;
  }
  fs.writeFileSync(`/tmp/${name}.cfg`, [
    `name = "${name}"`, 'type = "pv"', 'kernel = "/guest/vmlinuz"', 'ramdisk = "/tmp/domu.cpio"',
    `cmdline = "console=hvc0 rdinit=/init quiet xway_args=${args.join(',')}"`, 'memory = 512', 'vcpus = 1',
    'on_poweroff = "destroy"', 'on_crash = "destroy"',
  ].join('\n') + '\n');
  try {
    sh(`xl create ${paused ? '-p ' : ''}/tmp/${name}.cfg`);
  } catch (err) {
    throw new Error(`xl create failed: ${err.stderr || err.message}`);
  }
  return Number(sh(`xl domid ${name}`).trim());
}

function destroy(name) {
  try { sh(`xl destroy ${name}`); } catch { /* already gone */ }
}

/** Waits until `key` under the domain's report is set (and not `unless`); dumps the report. */
async function waitFor(domid, key, ms) {
  const base = `/local/domain/${domid}/data/xway-test`;
  let v = null;
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(500)) {
    v = read(`${base}/${key}`);
    if (v !== null) break;
    const state = read(`${base}/state`);
    if (state && state.startsWith('error')) break;
    if (read(`/local/domain/${domid}/domid`) === null) break; // the domain has ended
  }
  return v;
}

function report(domid, name) {
  const base = `/local/domain/${domid}/data/xway-test`;
  const keys = (() => { try { return sh(`xenstore-list ${base}`).trim().split('\n'); } catch { return []; } })();
  const text = keys.map((k) => `${k}=${read(`${base}/${k}`)}`).join(' ');
  console.log(`  domU ${domid} (${name}) reported: ${text}`);
  return Object.fromEntries(keys.map((k) => [k, read(`${base}/${k}`)]));
}

function consoleLog(name) {
  try { return fs.readFileSync(`/var/log/xen/console/guest-${name}.log`, 'utf8').slice(-3000); } catch { return '(no console log)'; }
}

const enabled = process.env.XWAY_XEN_DOMU === '1';
if (!enabled) console.log('  domU tests not run: set XWAY_XEN_DOMU=1 for test/xen/run.sh (opt-in: Node crashes at random in PV domUs under TCG, see docs/xen.md)');
const maybe = enabled ? test : () => {};

maybe('a domU client and a dom0 server exchange data through granted pages, and a destroyed domU is noticed', async () => {
  const server = startPeer(['echo', '7100']);
  try {
    await server.next('listening', 20000);
    const domid = startDomain('xway-cli0', ['client', '0', '7100', 'hold']);
    assert.ok(domid > 0, `domU id ${domid}`);
    const state = await waitFor(domid, 'state', 240_000);
    const r = report(domid, 'xway-cli0');
    if (state !== 'holding') console.log(consoleLog('xway-cli0'));
    assert.equal([r.available, r.domid, r.endpoint, r.connected, r.echo, r.state],
      ['yes', String(domid), '/local/domain/0/data/xway/7100', '0', 'ok', 'holding']);
    const channel = await server.next('channel', 5000);
    assert.is(channel.domid, domid, 'the server saw the domU as its peer (XenStore ownership record)');
    // The domU's grants are mapped in dom0 and the channel is open: destroy the domain.
    sh('xl destroy xway-cli0');
    const gone = await server.next('peergone', 20000);
    assert.match(gone.reason, new RegExp(`domain ${domid} is gone`));
  } finally {
    destroy('xway-cli0');
    server.kill('SIGKILL');
  }
});

maybe('two guests: after xen-permit.sh the client domU finds the server domU by address and talks to it', async () => {
  let ok = false;
  try {
    const s = startDomain('xway-srv', ['server', '7200']);
    const c = startDomain('xway-cli', ['client', '10.0.0.1', '7200', 'close'], { paused: true });
    const out = sh(`sh ${PERMIT} ${s}=10.0.0.1 ${c}=10.0.0.2`);
    assert.match(out, new RegExp(`10\\.0\\.0\\.1 -> domain ${s}`));
    const listing = sh('xenstore-ls -p /local/xway/hosts');
    assert.ok(listing.includes(`n0,r${s},r${c}`), `the map is dom0's, readable by both guests:\n${listing}`);
    const listening = await waitFor(s, 'state', 240_000);
    if (listening !== 'listening') { report(s, 'xway-srv'); console.log(consoleLog('xway-srv')); }
    assert.is(listening, 'listening');
    sh('xl unpause xway-cli');
    const state = await waitFor(c, 'state', 240_000);
    const rc = report(c, 'xway-cli');
    if (state !== 'closed') console.log(consoleLog('xway-cli'));
    assert.equal([rc.available, rc.peer, rc.endpoint, rc.connected, rc.echo, rc.state],
      ['yes', String(s), `/local/domain/${s}/data/xway/7200`, String(s), 'ok', 'closed']);
    const gone = await waitFor(s, 'peergone-0', 20_000);
    const rs = report(s, 'xway-srv');
    assert.is(rs['channel-0'], String(c), 'the server domU saw the client domU as its peer');
    assert.match(gone ?? '', /unmapped|is gone/);
    ok = true;
  } finally {
    if (!ok) for (const name of ['xway-srv', 'xway-cli']) console.log(`--- console of ${name}:\n${consoleLog(name)}`);
    destroy('xway-cli');
    destroy('xway-srv');
    try { sh(`sh ${PERMIT} --revoke 0`); } catch { /* nothing recorded */ }
  }
});

test.run();
