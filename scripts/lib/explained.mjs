// Known, explained differences live in docs/register.md, in tables under fixed headings, so the
// reason a program can tell a ring from TCP is written once, where users read about the preload,
// and the runners count those tests as skipped with that reason (never as passed).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DOC = fileURLToPath(new URL('../../docs/register.md', import.meta.url));

/** The body rows (arrays of trimmed cells, backticks removed) of the first table under `heading`. */
export function tableUnder(heading, file = DOC) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((line) => /^#+\s/.test(line) && line.replace(/^#+\s+/, '').trim() === heading);
  if (start < 0) throw new Error(`${file}: no heading "${heading}"`);
  const rows = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#+\s/.test(line)) break;
    if (!line.startsWith('|')) continue;
    const cells = line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim().replace(/^`|`$/g, ''));
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue; // the separator row
    rows.push(cells);
  }
  return rows.slice(1); // the first row is the header
}
