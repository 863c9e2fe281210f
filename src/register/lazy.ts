// Synchronous, on-demand loading of heavy.ts (require() of an ES module: Node >= 20.19), so that
// `node --import xway/register` costs little at start-up and connect()/listen() can still decide
// synchronously.
import { createRequire } from 'node:module';

type Heavy = typeof import('./heavy.js');
type Switch = typeof import('./switch.js');
const require = createRequire(import.meta.url);
let loaded: Heavy | undefined;

export function heavy(): Heavy {
  return (loaded ??= require('./heavy.js') as Heavy);
}

let switchLoaded: Switch | undefined;

/** The registry and the policy: needed at the first TCP connect (reading the registry pulls in
 *  node:crypto, which alone costs more start-up time than the rest of the preload). */
export function switchModules(): Switch {
  return (switchLoaded ??= require('./switch.js') as Switch);
}
