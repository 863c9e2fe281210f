// xway/register: `node --import xway/register app.js` (or NODE_OPTIONS=--import=xway/register, or
// `node --require xway/register` for CommonJS) makes the TCP connections an unmodified program opens
// to co-resident xway servers ride rings, and makes its TCP servers reachable over rings. XWAY=off
// leaves Node untouched (nothing is patched); XWAY_DEBUG=1 logs each transport choice. See
// docs/register.md.

import { patchServer } from './server.js';
import { patchClient } from './client.js';

const kInstalled = Symbol.for('xway.register');
const g = globalThis as Record<symbol, unknown>;

if (process.env.XWAY !== 'off' && !g[kInstalled]) {
  g[kInstalled] = true;
  patchServer();
  patchClient();
}

export {};
