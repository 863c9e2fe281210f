// The Xen platform where Xen is absent (this machine, CI): it must say so clearly and fail with a
// typed error, and everything else keeps working. The Xen platform itself is tested on real Xen by
// test/xen/run.sh (boots Xen under QEMU and runs test/xen/*.test.js inside dom0).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { xenUnavailableReason, connectXen, listenXen, lookupXenEndpoint, XenUnavailableError, hostUnavailableReason } from '../dist/index.js';

const require = createRequire(import.meta.url);
const onXen = fs.existsSync('/dev/xen/evtchn');

test('xenAvailable() gives a clear reason where Xen is absent', () => {
  if (onXen) { console.log('  (this machine has /dev/xen/evtchn: skipping the no-Xen checks)'); return; }
  const native = require('../native/build/Release/xway_native.node');
  const reason = native.xenAvailable();
  assert.type(reason, 'string');
  assert.match(reason, /^Xen not available \(.+\)$/);
  // Either the libraries are missing, or (libxen installed, as on a dev box) the devices are.
  assert.match(reason, /libxen(evtchn|store)\.so|\/dev\/xen\//);
  assert.is(xenUnavailableReason(), reason);
});

test('connectXen / listenXen / lookupXenEndpoint fail with ERR_XWAY_XEN_UNAVAILABLE', async () => {
  if (onXen) return;
  let err;
  try { await connectXen(0, 8080); } catch (e) { err = e; }
  assert.instance(err, XenUnavailableError);
  assert.is(err.code, 'ERR_XWAY_XEN_UNAVAILABLE');
  assert.match(err.message, /Xen not available \(/);
  assert.throws(() => listenXen(8080, {}, () => {}), (e) => e.code === 'ERR_XWAY_XEN_UNAVAILABLE');
  assert.throws(() => lookupXenEndpoint(0, 8080), (e) => e.code === 'ERR_XWAY_XEN_UNAVAILABLE');
});

test('the native Xen objects refuse to open without Xen, with ENOSYS and the reason', () => {
  if (onXen) return;
  const native = require('../native/build/Release/xway_native.node');
  assert.throws(() => new native.XenEventChannel(() => {}), (e) => e.code === 'ENOSYS' && /Xen not available/.test(e.message));
  assert.throws(() => new native.XenStore(() => {}), (e) => e.code === 'ENOSYS' && /Xen not available/.test(e.message));
  const mem = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  assert.throws(() => native.xenGrantShare(new Uint8Array(mem.buffer), 65536, 4096, 0, -1, -1), (e) => e.code === 'ENOSYS');
  // Arguments are still checked first.
  assert.throws(() => native.xenGrantShare(new Uint8Array(mem.buffer), 100, 4096, 0, -1, -1), (e) => e.code === 'ERR_OUT_OF_RANGE');
  // And the host platform is unaffected.
  assert.is(hostUnavailableReason(), null);
});

test.run();
