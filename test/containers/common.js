// What the container tests share: a uvu suite whose tests are skipped, with the reason, where no
// lab can be made (see netns.js), and small checks.
import { suite } from 'uvu';
import { testIf } from '../helpers.js';
import { labUnavailableReason } from './netns.js';

export const unavailable = labUnavailableReason();

/** A suite, and its `test` (a stand-in that registers skips when no lab can be made). */
export function labSuite(title) {
  const s = suite(title);
  return { s, test: testIf(s, unavailable === null, unavailable) };
}

/** The XWAY_DEBUG lines (stderr) of a program about connections to host:port. */
export function debugLines(stderr, host, port) {
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return stderr.split('\n').filter((l) => l.startsWith('xway: ') && l.includes(where));
}

/** Why the last connection to host:port that took TCP did, from the client's XWAY_DEBUG lines
 *  ('' if none said). */
export function tcpReason(stderr, host, port) {
  const line = debugLines(stderr, host, port).filter((l) => / -> tcp \(/.test(l)).at(-1);
  return line ? line.slice(line.indexOf('-> tcp (') + 8, -1) : '';
}

/** The view of a connection both ends should show, without the transport. */
export const addresses = (v) => ({
  localAddress: v.localAddress, localPort: v.localPort, localFamily: v.localFamily,
  remoteAddress: v.remoteAddress, remotePort: v.remotePort, remoteFamily: v.remoteFamily,
});
