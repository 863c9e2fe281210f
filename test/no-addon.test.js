// Without the native addon (another OS, or a build that failed), xway still loads, rings work
// between threads, and the host platform says clearly why it is unavailable. The package is copied
// without native/build into a temporary folder: a real missing addon, not a simulated one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

test('no native addon: rings work, host platform reports why it is unavailable', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xway-noaddon-'));
  try {
    cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
    copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    writeFileSync(path.join(dir, 'probe.mjs'), `
      import { Channel, createSharedMemory, connectHost, hostUnavailableReason, RESERVED_BYTES } from './dist/index.js';
      const memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
      const a = Channel.create(memory, RESERVED_BYTES, { capacityA: 4096 });
      const b = Channel.attach(memory, RESERVED_BYTES, { capacityA: 4096 });
      a.tx.write(Buffer.from('still works'));
      let error;
      try { await connectHost('/nonexistent/ctl.sock'); } catch (err) { error = { name: err.name, code: err.code, message: err.message }; }
      console.log(JSON.stringify({ ring: b.rx.read().toString(), reason: hostUnavailableReason(), error }));
    `);
    const { stdout } = await run(process.execPath, [path.join(dir, 'probe.mjs')], { timeout: 20_000 });
    const out = JSON.parse(stdout);
    assert.is(out.ring, 'still works');
    assert.match(out.reason, new RegExp(`no prebuilt binary for ${process.platform}-${process.arch} in ${dir}/prebuilds`));
    assert.match(out.reason, /and no local build .*native\/build\/Release\/xway_native\.node/);
    assert.is(out.error.code, 'ERR_XWAY_HOST_UNAVAILABLE');
    assert.match(out.error.message, /xway host platform unavailable: .*npm rebuild xway/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
