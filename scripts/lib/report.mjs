// What both compatibility runners print while they run and when a run failed.

// Best first: a thrown error's headline ("AssertionError [ERR_ASSERTION]: …", "Error: read
// ECONNRESET"), a mustCall mismatch, a failed test; then any line naming an error code.
const HEADLINES = [
  /^(Uncaught )?(\w*Error|\w+Exception)\b.*:|^Error \[|Mismatched .* calls|^\s*\d+\) |not ok|✗|✖/,
  /ERR_[A-Z_]+|\bE[A-Z]{4,}\b|[Tt]imed? ?out/,
];

/** The first relevant lines of a failed run's output: from its first error headline, else its
 *  last lines. */
export function excerpt(output, lines = 6) {
  const all = output.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() && !/^\s*\^+\s*$/.test(l));
  for (const pattern of HEADLINES) {
    const at = all.findIndex((l) => pattern.test(l.trim()) && !/^\s*at /.test(l));
    if (at >= 0) return all.slice(at, at + lines);
  }
  return all.slice(-lines);
}

const tty = process.stderr.isTTY;
/** "[12/516] test-http-foo.js failed" on stderr: on a terminal one line rewritten in place; in a
 *  log every failure and every 25th file, so a CI log shows progress without a line per file. */
export function progress(done, total, name, status) {
  const line = `[${done}/${total}] ${name} ${status}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}${done === total ? '\n' : ''}`);
  else if (status === 'failed' || done % 25 === 0 || done === total) process.stderr.write(`${line}\n`);
}
