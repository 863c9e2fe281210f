// Popular libraries whose own test suites open real loopback connections, taken from Debian's
// source packages (npm tarballs ship no tests) and made runnable once in
// ${XDG_CACHE_HOME:-~/.cache}/xway-peer-suites/<package>_<version>/: the upstream tree plus the
// node_modules its tests need, installed with npm from the versions its package.json names (the
// test runner and test-only dependencies never enter this project's package.json).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cacheDir, extract, fetchSource } from './debian-source.mjs';

/**
 * name: the suite's name in reports; pkg: Debian source package; dev: the devDependencies its
 * tests need (linters, coverage and benchmarks left out); mocha: the arguments of its own test
 * script, less what stops at the first failure (express's --bail) or skews counts (nyc).
 */
export const LIBRARIES = [
  { name: 'ws', pkg: 'node-ws', dev: ['mocha'], mocha: ['--throw-deprecation', 'test/*.test.js'] },
  {
    name: 'express', pkg: 'node-express',
    dev: ['after', 'cookie-parser', 'cookie-session', 'ejs', 'express-session', 'hbs', 'marked', 'method-override',
      'mocha', 'morgan', 'multiparty', 'pbkdf2-password', 'supertest', 'vhost'],
    mocha: ['--require', 'test/support/env', '--check-leaks', 'test/', 'test/acceptance/'],
  },
  {
    // A proxy in the middle: http, https and WebSocket (ws, socket.io) through http-proxy.
    name: 'http-proxy', pkg: 'node-http-proxy',
    dev: ['async', 'concat-stream', 'expect.js', 'mocha', 'semver', 'socket.io', 'socket.io-client', 'sse', 'ws'],
    mocha: ['test/*-test.js'],
  },
];

const MARKER = '.complete';

/** { root, version, mocha } of a library's runnable test tree, preparing it on first use. */
export function prepareLibrary(library, { log = () => {} } = {}) {
  const base = cacheDir('xway-peer-suites');
  const cached = fs.existsSync(base) ? fs.readdirSync(base).filter((d) => d.startsWith(`${library.pkg}_`)) : [];
  let root = cached.map((d) => path.join(base, d)).find((d) => fs.existsSync(path.join(d, MARKER)));
  if (!root) {
    const source = fetchSource(library.pkg, { log });
    root = path.join(base, `${library.pkg}_${source.version}`);
    log(`${library.name}: extracting ${path.basename(source.tarball)} and installing its test dependencies`);
    extract(source.tarball, root, ['*']);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const dev = Object.fromEntries(library.dev.map((name) => [name, manifest.devDependencies[name]]));
    // Only the runtime dependencies and the chosen dev ones; no install scripts are needed.
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ ...manifest, devDependencies: dev }, null, 2));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', '--loglevel=error'],
      { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    fs.writeFileSync(path.join(root, MARKER), JSON.stringify(source, null, 2));
  }
  const mochaPkg = JSON.parse(fs.readFileSync(path.join(root, 'node_modules/mocha/package.json'), 'utf8'));
  const bin = typeof mochaPkg.bin === 'string' ? mochaPkg.bin : mochaPkg.bin.mocha ?? mochaPkg.bin._mocha;
  const { version } = JSON.parse(fs.readFileSync(path.join(root, MARKER), 'utf8'));
  return { root, version, mocha: path.join(root, 'node_modules/mocha', bin) };
}
