// The mocha reporter of scripts/peer-suites.mjs: one JSON line per outcome, appended synchronously
// to $XWAY_PEER_EVENTS, so a suite that crashes or hangs loses nothing it already decided, and a
// marker line on stdout when the run is over (after it, the process should exit by itself).
// CommonJS with a plain constructor: mocha 3 to 10 all load reporters this way.
'use strict';
const fs = require('fs');

function PeerReporter(runner) {
  const file = process.env.XWAY_PEER_EVENTS;
  // Suites repeat titles (express has a few): the second test of a title is "title #2". The same
  // test reported twice (an error after it passed) keeps its name.
  const names = new WeakMap();
  const seen = new Map();
  const nameOf = (test) => {
    if (!names.has(test)) {
      const title = test.fullTitle();
      const n = (seen.get(title) || 0) + 1;
      seen.set(title, n);
      names.set(test, n > 1 ? `${title} #${n}` : title);
    }
    return names.get(test);
  };
  const record = (outcome, test, error) => {
    const line = { outcome, title: nameOf(test) };
    // The headline, the assertion's values ("6 !== 0"), and where: the first lines with text.
    if (error) line.error = String((error && error.stack) || error).split('\n').filter((l) => l.trim()).slice(0, 4).join('\n');
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
  };
  runner.on('pass', (test) => record('pass', test));
  runner.on('pending', (test) => record('pending', test));
  runner.on('fail', (test, error) => {
    record('fail', test, error);
    console.log(`failed: ${test.fullTitle()}: ${String(error && error.message).split('\n')[0]}`);
  });
  runner.on('end', () => {
    fs.appendFileSync(file, `${JSON.stringify({ outcome: 'end' })}\n`);
    console.log('xway-peer-suite: run over');
  });
}
module.exports = PeerReporter;
