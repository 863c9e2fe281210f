// The differential semantics suite (test/semantics/) between two processes of a Xen dom0: each
// scenario over plain TCP (mode 'net', node:net on both ends: the reference) and over a Xen
// channel (mode 'xen': grant pages and event channels; the server role in another process
// listens on 0.0.0.0, the client connects to ADDRESS, which xen-permit.sh records for dom0 —
// only the Xen record leads there, so a connection that is not a Xen channel fails the
// scenario). Run by test/xen/run.sh inside dom0; the same scenarios and expectations as on the
// host, less those about this machine's own addresses (`loopback`).
// Environment: XWAY_XEN_SEMANTICS_MODES (default net,xen; 'tcp' adds xway's API with XWAY=off),
// XWAY_XEN_SEMANTICS_BUDGET_S (default 150: scenarios not started by then are reported failed,
// so the file ends within the harness's time), and the XWAY_SEMANTICS_* options of
// test/semantics/suite.js; XWAY_SEMANTICS_LIMIT_MS defaults to 15000 here (software emulation).
//
// NOTE: not run by the author of this file (the Xen harness belongs to another engineer's
// session); written against test/xen/socket.test.js, which shows how dom0 makes a Xen channel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';

process.env.XWAY_SEMANTICS_LIMIT_MS ??= '15000'; // before the harness reads it
const { MODES, xenMode } = await import('../semantics/harness.js');
const { defineSuite } = await import('../semantics/suite.js');

const PERMIT = new URL('../../scripts/xen-permit.sh', import.meta.url).pathname;
const ADDRESS = '10.1.2.4'; // not an address of this machine, and not socket.test.js's

const available = { ...MODES, xen: xenMode(ADDRESS) };
const modes = (process.env.XWAY_XEN_SEMANTICS_MODES || 'net,xen').split(',').map((m) => {
  if (!available[m] || m === 'threads' || m === 'same') throw new Error(`XWAY_XEN_SEMANTICS_MODES: no mode ${m} here`);
  return available[m];
});

test.before(() => { execFileSync('sh', [PERMIT, `0=${ADDRESS}`], { encoding: 'utf8' }); });
test.after(() => { execFileSync('sh', [PERMIT, '--revoke', '0']); });

defineSuite({ test, assert, modes, budgetMs: Number(process.env.XWAY_XEN_SEMANTICS_BUDGET_S || 150) * 1000, leaveOut: (s) => s.notOnXen !== undefined });

test.run();
