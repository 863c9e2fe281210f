// More than one domain: PV domUs started with xl from this same initramfs (its /init takes the
// domU branch and runs fixtures/domu.js with the arguments on the kernel command line). Each domU
// reports in XenStore under its own data/xway-test.
// A domU client and a dom0 echo server (another dom0 process): 200 kB echoed through pages the
// domU granted to dom0; then the domU is destroyed with the channel open, and dom0 notices.
// (Guest-to-guest: guests.test.js.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import { startDomain } from './guests.js';

const FIXTURE = new URL('./fixtures/peer.js', import.meta.url).pathname;
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

const enabled = process.env.XWAY_XEN_DOMU !== '0';
if (!enabled) console.log('  domU tests skipped: XWAY_XEN_DOMU=0');
// Without guests the test is counted as skipped, never as passed.
const maybe = enabled ? test : test.skip;

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

test.run();
