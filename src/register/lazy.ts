// Synchronous, on-demand loading of heavy.ts (require() of an ES module: Node >= 20.19), so that
// `node --import xway/register` costs little at start-up and connect()/listen() can still decide
// synchronously.
import { createRequire } from 'node:module';

type Heavy = typeof import('./heavy.js');
const require = createRequire(import.meta.url);
let loaded: Heavy | undefined;

export function heavy(): Heavy {
  return (loaded ??= require('./heavy.js') as Heavy);
}
