// Prints every scenario's expected outcome (node:net's, as measured) as a Markdown table:
// `node test/semantics/expectations.js [regexp]`. The facts the ring transport implements against.
import { scenarios } from './scenarios.js';
import { MODES, applies } from './harness.js';

const only = process.argv[2] ? new RegExp(process.argv[2]) : null;
const show = (e) => (Array.isArray(e) ? e.map((i) => (Array.isArray(i) ? `{${i.join(' / ')}}` : i)).join(' → ') : e.oneOf.map(show).join('  **or**  '));

console.log('| scenario | modes | expected (per socket) |');
console.log('| --- | --- | --- |');
for (const s of scenarios) {
  if (only && !only.test(s.name)) continue;
  const expect = typeof s.expect === 'function' ? s.expect() : s.expect ?? {};
  const modes = Object.values(MODES).filter((m) => applies(m, s)).map((m) => m.name).join(' ');
  const cells = Object.entries(expect).map(([label, e]) => `**${label}**: ${show(e) || '(nothing)'}`);
  if (s.check) cells.push('+ checks on properties');
  console.log(`| ${s.name.replace(/\|/g, '\\|')} | ${modes} | ${cells.join('<br>').replace(/\|/g, '\\|')} |`);
}
