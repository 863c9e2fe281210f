// The two ways every compatibility run starts a program: plain, and with xway's preload
// (NODE_OPTIONS, so every Node process the test starts gets it too) and a registry of its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REGISTER = fileURLToPath(new URL('../../dist/register/index.js', import.meta.url));

/** The environment without anything that would change either run: no inherited preload or
 *  NODE_OPTIONS, no XWAY_* settings (XWAY_DEBUG lines would change a test's stderr). */
export function baseEnv(env = process.env) {
  const clean = {};
  for (const [key, value] of Object.entries(env)) {
    if (!/^(NODE_OPTIONS|NODE_PATH|NODE_REPL_EXTERNAL_MODULE|XWAY.*)$/.test(key)) clean[key] = value;
  }
  return clean;
}

/**
 * `env` for one run in `mode` ('plain' or 'preload'), and a cleanup function. A preload run gets a
 * fresh registry directory (mode 0700, as xway requires), so runs never see each other's servers.
 */
export function modeEnv(mode, env) {
  if (mode === 'plain') return { env, cleanup() {} };
  if (!fs.existsSync(REGISTER)) throw new Error(`${REGISTER} is missing: run npm ci (or npm run build) first`);
  const registry = fs.mkdtempSync(path.join(os.tmpdir(), 'xway-reg-'));
  fs.chmodSync(registry, 0o700);
  return {
    env: { ...env, NODE_OPTIONS: `--import=${REGISTER}`, XWAY_DIR: registry },
    cleanup() { fs.rmSync(registry, { recursive: true, force: true }); },
  };
}
