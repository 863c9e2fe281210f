// Runs one test process the way a test harness must: in its own process group (so a timeout or
// the end of the run also ends whatever it started), with a time limit, its output collected.
import { spawn } from 'node:child_process';

const OUTPUT_LIMIT = 256 * 1024;
const live = new Set();
// Stopped from outside (Ctrl-C, CI's `timeout`): the tests' process groups go too.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const pid of live) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    process.exit(130);
  });
}

/**
 * Runs `command args` with `options` (cwd, env) and resolves
 * { code, signal, timedOut, killed, ms, output, exitedAt } once it exited (or was killed after
 * `timeoutMs`, or by `onOutput(chunk, kill)` calling `kill()`: then `killed` is true).
 * `output` is stdout and stderr interleaved, cut at 256 KiB. `exitedAt` is the elapsed ms at the
 * main process's exit, which can be earlier than the end of its output when a child it started
 * still holds the pipes (those are killed with the group at exit).
 */
export function runProcess(command, args, { cwd, env, timeoutMs, onOutput } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child.pid);
    let output = '';
    let timedOut = false;
    let exitedAt = null;
    let killed = false;
    const collect = (chunk) => {
      if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8').slice(0, OUTPUT_LIMIT - output.length);
      onOutput?.(chunk, () => { killed = true; killGroup(); release(); });
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const killGroup = () => {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* the group is gone already */ }
    };
    // A process that left its own group can still hold the pipes: stop reading them in the end.
    const release = () => setTimeout(() => { child.stdout.destroy(); child.stderr.destroy(); }, 5000).unref();
    const timer = setTimeout(() => { timedOut = true; killGroup(); release(); }, timeoutMs ?? 60_000);
    child.on('exit', () => {
      exitedAt = Date.now() - started;
      // Leftovers of the test (servers it spawned, grandchildren) must not outlive it.
      killGroup();
      release();
    });
    child.on('error', (error) => { output += `\n[spawn failed: ${error.message}]`; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child.pid);
      resolve({ code, signal, timedOut, killed, ms: Date.now() - started, exitedAt, output });
    });
  });
}

/** Runs `worker(item, slot)` over `items` with at most `jobs` at a time; slot is 0..jobs-1. */
export async function runPool(items, jobs, worker) {
  let next = 0;
  const results = new Array(items.length);
  const lane = async (slot) => {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index], slot);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, (_, slot) => lane(slot)));
  return results;
}
