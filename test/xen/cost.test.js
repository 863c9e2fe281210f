// What a connection costs in dom0 once its link is up, measured from outside the platform code
// (fixtures/cost.js: event ports in /proc/interrupts, grant VMAs in /proc/self/maps, XenStore
// watches counted at the addon): after the first connection between two threads, each further one
// adds no event channel, no XenStore watch and no grant page. docs/xen.md ("What a connection
// costs") quotes the figures printed here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { XEN_CHUNK0_GRANTS } from '../../dist/platform/xen/link-layout.js';

const FIXTURE = new URL('./fixtures/cost.js', import.meta.url).pathname;

test('per connection after the first: no event channel, no XenStore watch, no grant page', () => {
  const out = JSON.parse(execFileSync(process.execPath, [FIXTURE, '20', '7020'], { encoding: 'utf8', timeout: 120_000 }).trim().split('\n').pop());
  console.log(`  ${JSON.stringify(out)}`);
  assert.equal([out.perLater.ports, out.perLater.watches, out.perLater.granted, out.perLater.mapped], [0, 0, 0, 0]);
  // The first connection made the link: one event channel (a port on each side, both in this
  // process), one watch on the peer domain per side, chunk 0 (80 pages) and one 1 MiB chunk (256), shared by one side
  // and mapped by the other.
  assert.equal([out.first.ports, out.first.watches, out.first.granted, out.first.mapped], [2, 2, XEN_CHUNK0_GRANTS + 256, XEN_CHUNK0_GRANTS + 256]);
});

test.run();
