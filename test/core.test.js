// The wasm core itself: what it imports and exports, and that instantiating it over a shared
// memory leaves the memory alone (no data segments, no start-up writes), which is what lets many
// threads and processes instantiate it over the same pages.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { coreModule } from '../dist/index.js';
import { R, RING_HEADER, CHANNEL_HEADER, MIN_CAPACITY, MAX_CAPACITY, RING_MAGIC, CHANNEL_MAGIC } from '../dist/ring/layout.js';

test('imports only a shared memory and exports only functions', () => {
  const module = coreModule();
  assert.equal(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
  const exports = WebAssembly.Module.exports(module);
  assert.ok(exports.length >= 20);
  for (const e of exports) assert.is(e.kind, 'function', `${e.name} is a ${e.kind}`);
});

test('instantiation writes nothing into the memory', () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const view = new Uint8Array(memory.buffer);
  for (let i = 0; i < view.length; i++) view[i] = (i * 7 + 3) & 0xff;
  const before = Uint8Array.from(view);
  for (let k = 0; k < 3; k++) new WebAssembly.Instance(coreModule(), { env: { memory } });
  assert.equal(view, before);
});

test('the release build has no data section (id 11) and no start function', () => {
  const wasm = readFileSync(new URL('../build/xway-core.wasm', import.meta.url));
  const ids = [];
  for (let at = 8; at < wasm.length;) {
    const id = wasm[at++];
    let size = 0, shift = 0, b;
    do { b = wasm[at++]; size |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    ids.push(id);
    at += size;
  }
  assert.not.ok(ids.includes(11), `sections: ${ids}`);
  assert.not.ok(ids.includes(8), 'start section');
});

test('the JavaScript layout agrees with assembly/layout.ts', () => {
  const source = readFileSync(new URL('../assembly/layout.ts', import.meta.url), 'utf8');
  const value = (name) => {
    const m = source.match(new RegExp(`export const ${name}: u32 = ([^;]+);`));
    assert.ok(m, `${name} not found in assembly/layout.ts`);
    return Function(`return (${m[1]})`)() >>> 0;
  };
  const js = { RING_HEADER, CHANNEL_HEADER, MIN_CAPACITY, MAX_CAPACITY, RING_MAGIC, CHANNEL_MAGIC };
  for (const [name, v] of Object.entries(js)) assert.is(v, value(name), name);
  for (const [name, v] of Object.entries(R)) assert.is(v, value(`R_${name}`), `R.${name}`);
});

test.run();
