// The differential semantics suite (issue 14): every scenario of ./scenarios.js, with its one
// expected outcome (node:net's on this machine), over plain TCP and over every ring platform of
// this host. ./README.md says how to run one mode or one scenario, and how the expectations were
// measured; ./suite.js lists the other options.
//   XWAY_SEMANTICS_MODES=net,tcp,threads,same,host   modes to run (default: all of them)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MODES } from './harness.js';
import { defineSuite } from './suite.js';

const modes = (process.env.XWAY_SEMANTICS_MODES || Object.keys(MODES).join(',')).split(',').map((m) => {
  if (!MODES[m]) throw new Error(`XWAY_SEMANTICS_MODES: no mode ${m} (${Object.keys(MODES)})`);
  return MODES[m];
});

defineSuite({ test, assert, modes });

test.run();
