// What one sequential connect+request+response+close (crr) costs each process, ring against TCP:
// how often its main thread went to sleep and was woken (voluntary context switches, from
// /proc/<pid>/task/<pid>/status) and its CPU time (utime + stime, /proc/<pid>/stat), per
// connection — the kernel's numbers, for the processes profile.mjs runs (without the profiler).
//
//   node bench/links/wakeups.mjs [--seconds S] [--reps N]
// With XWAY_PROFILE_EARLY=1 the request is written before 'connect' (see profile.mjs).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, reps: { type: 'string', default: '3' } } });
const roles = fileURLToPath(new URL('./profile.mjs', import.meta.url));
const wakeups = (pid) => Number(fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8').match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]);
const cpuMs = (pid) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // USER_HZ 100
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const rows = { ring: [], tcp: [] };
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const mode of rep % 2 ? ['tcp', 'ring'] : ['ring', 'tcp']) {
    const server = spawn(process.execPath, [roles, '--role', 'server', '0', mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d)))));
    const client = spawn(process.execPath, [roles, '--role', 'client', String(port), mode, '1', values.seconds, '0', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => setTimeout(resolve, 300)); // past start-up and the first connection (the link's set-up)
    const t0 = performance.now();
    const before = { s: wakeups(server.pid), c: wakeups(client.pid), sc: cpuMs(server.pid), cc: cpuMs(client.pid) };
    const line = await new Promise((resolve) => client.stdout.once('data', (d) => resolve(String(d).trim())));
    const after = { s: wakeups(server.pid), c: wakeups(client.pid), sc: cpuMs(server.pid), cc: cpuMs(client.pid) };
    const rate = Number(line.split(' ')[1]);
    const n = (rate * (performance.now() - t0)) / 1000; // connections in our window
    rows[mode].push({ rate, serverWakes: (after.s - before.s) / n, clientWakes: (after.c - before.c) / n, serverCpuUs: ((after.sc - before.sc) * 1000) / n, clientCpuUs: ((after.cc - before.cc) * 1000) / n });
    await new Promise((resolve) => client.once('exit', resolve));
    server.stdin.end();
    await new Promise((resolve) => server.once('exit', resolve));
  }
}
console.log(`sequential crr${process.env.XWAY_PROFILE_EARLY === '1' ? ', request written before \'connect\'' : ''}, medians of ${values.reps} runs of ${values.seconds} s (per connection):`);
for (const [mode, rs] of Object.entries(rows)) {
  const m = (k) => median(rs.map((r) => r[k]));
  console.log(`  ${mode.padEnd(4)} ${m('rate').toFixed(0).padStart(6)} conn/s   wake-ups: server ${m('serverWakes').toFixed(2)}, client ${m('clientWakes').toFixed(2)}   CPU: server ${m('serverCpuUs').toFixed(0)} µs, client ${m('clientCpuUs').toFixed(0)} µs`);
}
