// Small helpers shared by the test files.
import { Worker } from 'node:worker_threads';

const RING_WORKER = new URL('./fixtures/ring-worker.js', import.meta.url);

/** Runs a role of fixtures/ring-worker.js in a real worker thread; resolves with its result.
 *  Rejects on error, on an exit without a result, or after `timeoutMs`. */
export function runRingWorker(workerData, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(RING_WORKER, { workerData });
    let result;
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error(`worker ${workerData.role} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    worker.once('message', (m) => (result = m));
    worker.once('error', (err) => { clearTimeout(timer); reject(err); });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else reject(new Error(`worker ${workerData.role} exited with code ${code} and no result`));
    });
  });
}

/** Expects `fn` to throw an error with `code` (and, if given, of class `type`). */
export function throwsCode(assert, fn, code, type) {
  try {
    fn();
  } catch (err) {
    if (type) assert.instance(err, type);
    assert.is(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.unreachable(`expected an error with code ${code}`);
}

/**
 * `test` when `ready` is true; otherwise a stand-in that registers the test as skipped (uvu counts
 * it in "Skipped", and `npm test`'s last line with it) and prints why, so that a test whose
 * precondition is missing is never counted as passed.
 */
export function testIf(test, ready, reason) {
  if (ready) return test;
  return (name, fn) => {
    console.log(`SKIP ${JSON.stringify(name)}: ${reason}`);
    test.skip(name, fn);
  };
}
