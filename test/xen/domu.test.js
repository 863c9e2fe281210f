// Two domains: dom0 runs an echo server (listenXen in another process), and a PV domU started with
// xl from this same initramfs runs test/xen/fixtures/domu-client.js, which finds the endpoint in
// XenStore, offers pages granted to dom0, checks the echo of 200 kB and reports in XenStore. Then
// the domU is destroyed with the channel open, and the server must notice.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';

const FIXTURE = new URL('./fixtures/peer.js', import.meta.url).pathname;
const NAME = 'xway-domu';
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

function consoleLog() {
  try { return fs.readFileSync(`/var/log/xen/console/guest-${NAME}.log`, 'utf8').slice(-3000); } catch { return '(no console log)'; }
}

test('a domU client and a dom0 server exchange data through granted pages, and a destroyed domU is noticed', async () => {
  const server = startPeer(['echo', '7100']);
  let domid = null;
  try {
    await server.next('listening', 20000);
    // The domU's ramdisk: this dom0's own root file system (the same /init takes the domU branch).
    sh('cd / && find init bin lib lib64 mods pkg etc dev proc sys tmp -maxdepth 0 -print > /tmp/top && find bin lib lib64 mods pkg etc -print >> /tmp/top && cpio -o -H newc < /tmp/top > /tmp/domu.cpio 2>/dev/null');
    fs.writeFileSync('/tmp/domu.cfg', [
      `name = "${NAME}"`, 'type = "pv"', 'kernel = "/guest/vmlinuz"', 'ramdisk = "/tmp/domu.cpio"',
      'cmdline = "console=hvc0 rdinit=/init quiet"', 'memory = 640', 'vcpus = 1', 'on_poweroff = "destroy"', 'on_crash = "destroy"',
    ].join('\n') + '\n');
    try {
      sh('xl create /tmp/domu.cfg');
    } catch (err) {
      throw new Error(`xl create failed: ${err.stderr || err.message}`);
    }
    domid = Number(sh(`xl domid ${NAME}`).trim());
    assert.ok(domid > 0, `domU id ${domid}`);
    const base = `/local/domain/${domid}/data/xway-test`;
    let state = null;
    for (const t0 = Date.now(); Date.now() - t0 < 240_000; await sleep(500)) {
      state = read(`${base}/state`);
      if (state) break;
    }
    const report = ['available', 'domid', 'endpoint', 'connected', 'echo', 'state'].map((k) => `${k}=${read(`${base}/${k}`)}`).join(' ');
    console.log(`  domU ${domid} reported: ${report}`);
    if (state !== 'holding') console.log(consoleLog());
    assert.is(read(`${base}/available`), 'yes');
    assert.is(read(`${base}/domid`), String(domid));
    assert.is(read(`${base}/endpoint`), '/local/domain/0/data/xway/7100');
    assert.is(read(`${base}/connected`), '0');
    assert.is(read(`${base}/echo`), 'ok');
    assert.is(state, 'holding');
    const channel = await server.next('channel', 5000);
    assert.is(channel.domid, domid, 'the server saw the domU as its peer (XenStore ownership record)');
    // The domU's offer is gone, its grants are mapped in dom0: now destroy the domain.
    sh(`xl destroy ${NAME}`);
    const gone = await server.next('peergone', 20000);
    assert.match(gone.reason, new RegExp(`domain ${domid} is gone`));
  } finally {
    try { sh(`xl destroy ${NAME}`); } catch { /* already gone */ }
    server.kill('SIGKILL');
  }
});

test.run();
