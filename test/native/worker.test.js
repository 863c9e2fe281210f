// The addon in worker_threads: works on the worker's own loop, and a worker
// that ends or is terminated with objects still open leaks no descriptors.
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, openFds, sleep, tempSocket, withTimeout } from './util.js';

const script = new URL('./fixtures/worker.js', import.meta.url);

async function runWorker(mode) {
  const sock = tempSocket();
  const worker = new Worker(script, { workerData: { mode, path: sock.path } });
  const exited = new Promise((resolve, reject) => {
    worker.on('exit', resolve);
    worker.on('error', reject);
  });
  try {
    const msg = await withTimeout(new Promise((r) => worker.once('message', r)), 3000, `${mode}: event in worker`);
    assert.equal(msg.ports, [1]);
    if (mode === 'leave') {
      // Everything is open and ref'd: the worker would run forever.
      const alive = await Promise.race([exited, sleep(200).then(() => 'alive')]);
      assert.is(alive, 'alive');
      await worker.terminate();
    }
    const code = await withTimeout(exited, 2000, `${mode}: worker exit`);
    assert.is(code, mode === 'leave' ? 1 : 0);
  } finally {
    await worker.terminate();
    sock.cleanup();
  }
}

let before;
test.before(async () => {
  // A first worker may set up process-wide state (platform threads); warm up.
  await new Promise((r) => new Worker('0', { eval: true }).on('exit', r));
  await sleep(10);
  before = openFds();
});

for (const mode of ['close', 'unref', 'leave']) {
  test(`worker (${mode}) runs and leaks no descriptors`, async () => {
    await runWorker(mode);
    await sleep(10);
    assert.equal(openFds(), before);
  });
}

test('the main thread addon instance is independent of the workers', () => {
  assert.is(native.platformAvailable, true);
  const ch = new native.EventChannel(() => {});
  assert.is(ch.allocPort().port, 1);
  ch.close();
});

test.run();
