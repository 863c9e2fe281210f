// Start-up cost of the preload: `node --import xway/register -e ''` against `node -e ''` (and the
// --require form), interleaved, median of N runs each. Usage: node bench/http/startup.mjs [runs]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 21);
const empty = path.join(root, 'bench/http/empty.mjs'); // what --import itself costs (the ESM loader)
const variants = {
  'node -e ""': ['-e', ''],
  'node --import <empty module> -e ""': ['--import', empty, '-e', ''],
  'node --import xway/register -e ""': ['--import', 'xway/register', '-e', ''],
  'node --require xway/register -e ""': ['--require', 'xway/register', '-e', ''],
};
const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
const env = { ...process.env, XWAY_DEBUG: '' };
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(variants)) {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, args, { cwd: root, env });
    times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const base = median(times['node -e ""']);
for (const [name, v] of Object.entries(times)) {
  const m = median(v);
  console.log(`${name.padEnd(40)} median ${m.toFixed(1)} ms${m === base ? '' : `  (+${(m - base).toFixed(1)} ms)`}`);
}
