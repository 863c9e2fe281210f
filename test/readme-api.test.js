// Every name README.md documents as API is exported and typed: the names are read from the README
// (scripts/readme-api.mjs), so a name the README gains is checked without a second list to keep.
// Run time: the ES module and require() of it; types: dist/index.d.ts through the TypeScript
// compiler's own checker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import ts from 'typescript';
import { documentedApi } from '../scripts/readme-api.mjs';
import * as esm from 'xway';

const require = createRequire(import.meta.url);
const cjs = require('xway');
const api = documentedApi();

test('the README documents a sizeable API (the parser found its table)', () => {
  assert.ok(api.named.length > 30, `only ${api.named.length} names found`);
  for (const name of ['Ring', 'Channel', 'createServer', 'connectHost', 'hostUnavailableReason']) assert.ok(api.named.includes(name), name);
});

test('every documented name is exported, to import and to require()', () => {
  const missing = api.named.filter((name) => esm[name] === undefined || cjs[name] === undefined);
  assert.equal(missing, []);
});

test('every documented xway.NAME is on the default export', () => {
  const missing = api.defaultMembers.filter((name) => typeof esm.default[name] !== 'function' || typeof cjs.default[name] !== 'function');
  assert.equal(missing, []);
});

test('documented static and instance members exist', () => {
  const memory = esm.createSharedMemory({ bytes: esm.Channel.byteLength(4096) });
  const instances = {
    Channel: esm.Channel.create(memory, esm.RESERVED_BYTES, { capacityA: 4096 }),
    Ring: esm.Ring.create(esm.createSharedMemory({ bytes: esm.ringByteLength(4096) }), esm.RESERVED_BYTES, 4096),
  };
  const missing = [];
  for (const [cls, names] of Object.entries(api.statics)) {
    for (const name of names) if (typeof esm[cls][name] !== 'function') missing.push(`${cls}.${name}`);
  }
  for (const [cls, names] of Object.entries(api.instance)) {
    assert.ok(instances[cls], `no instance of ${cls} to check`);
    for (const name of names) if (!(name in instances[cls])) missing.push(`${cls}#${name}`);
  }
  assert.equal(missing, []);
});

test('every documented name, static and member is in the type declarations', () => {
  const file = new URL('../dist/index.d.ts', import.meta.url).pathname;
  const program = ts.createProgram([file], { strict: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file));
  const exports = new Map(checker.getExportsOfModule(moduleSymbol).map((s) => [s.name, s]));
  const missing = api.named.filter((name) => !exports.has(name));
  const typeOf = (symbol) => checker.getTypeOfSymbolAtLocation(symbol, symbol.valueDeclaration ?? symbol.declarations[0]);
  const resolved = (symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  const defaultType = typeOf(resolved(exports.get('default')));
  for (const name of api.defaultMembers) if (!defaultType.getProperty(name)) missing.push(`default.${name}`);
  for (const [cls, names] of Object.entries(api.statics)) {
    const symbol = resolved(exports.get(cls));
    for (const name of names) if (!typeOf(symbol).getProperty(name)) missing.push(`${cls}.${name}`);
  }
  for (const [cls, names] of Object.entries(api.instance)) {
    const instanceType = checker.getDeclaredTypeOfSymbol(resolved(exports.get(cls)));
    for (const name of names) if (!instanceType.getProperty(name)) missing.push(`${cls}#${name}`);
  }
  assert.equal(missing, []);
});

test.run();
