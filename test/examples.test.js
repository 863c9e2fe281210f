// The examples in examples/ (shown in the README), as ES modules and from CommonJS, run and print
// what the README says. scripts/packaging-test.mjs runs the same files against the installed package.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = promisify(execFile);

for (const ext of ['mjs', 'cjs']) {
  test(`examples/ring-threads.${ext}: a worker answers over a channel, then exits on end of stream`, async () => {
    const { stdout } = await run(process.execPath, [new URL(`../examples/ring-threads.${ext}`, import.meta.url).pathname], { timeout: 20_000 });
    assert.equal(stdout.trim().split('\n'), [
      'hello -> HELLO',
      'shared memory -> SHARED MEMORY',
      'no syscalls on the data path -> NO SYSCALLS ON THE DATA PATH',
      'worker saw end of stream and exited',
    ]);
  });

  test(`examples/net-echo.${ext}: the net API, carried by a ring`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xway-example-'));
    try {
      const { stdout } = await run(process.execPath, [new URL(`../examples/net-echo.${ext}`, import.meta.url).pathname],
        { timeout: 20_000, env: { ...process.env, XWAY_DIR: dir } });
      assert.equal(stdout.trim().split('\n'), ['connected over ring', 'echo: hello through shared memory', 'server closed']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('require("xway") works from CommonJS', async () => {
  const { stdout } = await run(process.execPath, ['-e', 'const x = require("xway"); console.log(typeof x.Ring, typeof x.Channel)'], { timeout: 20_000 });
  assert.is(stdout.trim(), 'function function');
});

test.run();
