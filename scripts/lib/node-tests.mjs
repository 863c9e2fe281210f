// Node's own networking tests, from the Debian source package of the installed Node major,
// extracted once into ${XDG_CACHE_HOME:-~/.cache}/xway-node-suite/<debian version>/ (a tree laid
// out like Node's source: test/common, test/fixtures, test/parallel/<the modules' files>).
import fs from 'node:fs';
import path from 'node:path';
import { cacheDir, extract, fetchSource } from './debian-source.mjs';

export const MODULES = ['net', 'http', 'https', 'tls', 'http2'];
// test/common and the fixtures (keys, certificates, data files) are all the tests load.
const MEMBERS = ['test/common', 'test/fixtures', ...MODULES.map((m) => `test/parallel/test-${m}-*`)];
const MARKER = '.complete';

const major = (version) => version.replace(/^\d+:/, '').split('.')[0];

/** { root, version } of the cached tests for this Node's major, fetching them if needed. */
export function nodeTests({ log = () => {} } = {}) {
  const want = major(process.versions.node);
  const base = cacheDir('xway-node-suite');
  const cached = fs.existsSync(base) ? fs.readdirSync(base) : [];
  // A tree extracted with another member list (an older runner) is extracted again.
  const complete = (v) => {
    try { return JSON.stringify(JSON.parse(fs.readFileSync(path.join(base, v, MARKER), 'utf8')).members) === JSON.stringify(MEMBERS); } catch { return false; }
  };
  const hit = cached.filter((v) => major(v) === want && complete(v)).sort().pop();
  if (hit) return { root: path.join(base, hit), version: hit };

  const source = fetchSource('nodejs', { accept: (v) => major(v) === want, log });
  const root = path.join(base, source.version);
  log(`extracting Node's tests into ${root}`);
  extract(source.tarball, root, MEMBERS);
  fs.writeFileSync(path.join(root, MARKER), JSON.stringify({ ...source, members: MEMBERS }, null, 2));
  return { root, version: source.version };
}

/** The module a test file belongs to ('test-http2-foo.js' → 'http2'), or null. */
export function moduleOf(file) {
  return /^test-(net|https|http2|http|tls)-.*\.m?js$/.exec(file)?.[1] ?? null;
}

/** The `// Flags:` of a test file, split as tools/test.py does (first match in the source). */
export function flagsOf(source) {
  const match = /\/\/\s+Flags:(.*)/.exec(source);
  return match ? match[1].trim().split(/\s+/).filter(Boolean) : [];
}
