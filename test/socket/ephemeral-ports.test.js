// The ephemeral ports of a listener's ring connections (socket/identity.ts): even ports first, as
// Linux's connect() takes them, odd ones once the even are all used, never a port that is live or
// resting, EADDRNOTAVAIL when none is left, and a released port back in use only after its rest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EphemeralPorts, ephemeralRange } from '../../dist/socket/identity.js';

const [low, high] = ephemeralRange();
const evens = Math.floor((high - (low + (low & 1))) / 2) + 1;
const all = high - low + 1;

/** Allocates until EADDRNOTAVAIL; returns the ports in order and the error. */
function exhaust(ports) {
  const got = [];
  for (;;) {
    try {
      got.push(ports.allocate());
    } catch (err) {
      return { got, err };
    }
    if (got.length > all) throw new Error('more ports than the range holds');
  }
}

test('every port of the range once: the even ones first, then the odd ones, then EADDRNOTAVAIL', () => {
  const ports = new EphemeralPorts();
  const { got, err } = exhaust(ports);
  assert.is(got.length, all);
  assert.is(new Set(got).size, all, 'no port twice');
  assert.ok(got.every((p) => p >= low && p <= high), 'inside ip_local_port_range');
  assert.ok(got.slice(0, evens).every((p) => p % 2 === 0), 'the even ports first');
  assert.ok(got.slice(evens).every((p) => p % 2 === 1), 'then the odd ones');
  assert.is(err.code, 'EADDRNOTAVAIL');
  assert.is(err.syscall, 'connect');
  assert.is(ports.size, all);
});

test('a released port rests (TIME_WAIT) before it is given out again; live ones never are', async () => {
  const ports = new EphemeralPorts();
  const { got } = exhaust(ports);
  const freed = got.slice(0, 10);
  for (const p of freed) ports.release(p);
  assert.is(ports.size, all - 10);
  assert.throws(() => ports.allocate(), (err) => err.code === 'EADDRNOTAVAIL', 'resting ports are not free yet');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const again = [];
  for (let i = 0; i < 10; i++) again.push(ports.allocate());
  assert.equal([...again].sort(), [...freed].sort(), 'exactly the rested ports come back');
  assert.throws(() => ports.allocate(), (err) => err.code === 'EADDRNOTAVAIL');
});

test('after a burst, new ports come from past the last one given, not from the resting ones', () => {
  const ports = new EphemeralPorts();
  const first = [];
  for (let i = 0; i < 1000; i++) first.push(ports.allocate());
  for (const p of first) ports.release(p);
  const resting = new Set(first);
  for (let i = 0; i < 1000; i++) {
    const p = ports.allocate();
    assert.not.ok(resting.has(p), `port ${p} is resting`);
    assert.is(p % 2, 0, 'even ones are left');
  }
});

test.run();
