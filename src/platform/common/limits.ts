// Limits a user sets from the environment, shared by every platform.

import { XwayRangeError } from '../../errors.js';

/** A byte count from the environment ("512M", "2G", or plain bytes), or undefined. */
export function bytesFromEnv(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const m = /^([0-9]+)([KMG]?)$/i.exec(value.trim());
  if (!m) throw new XwayRangeError(`${name} must be a byte count such as 1073741824, 512M or 2G, got ${JSON.stringify(value)}`);
  return Number(m[1]) * { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
}
