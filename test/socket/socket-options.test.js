// A RingSocket hands net.Socket's constructor no options when they hold nothing it acts on
// (src/socket/socket-options.ts): the socket it makes must be the one net.Socket makes from the
// same options, whichever way they went.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { RingSocket } from '../../dist/index.js';
import { constructorOptions } from '../../dist/socket/socket-options.js';

/** What a program can read of a fresh socket's stream set-up. */
const observed = (s) => ({
  allowHalfOpen: s.allowHalfOpen,
  readable: s.readable,
  writable: s.writable,
  readableHighWaterMark: s.readableHighWaterMark,
  writableHighWaterMark: s.writableHighWaterMark,
  readableObjectMode: s.readableObjectMode,
  writableObjectMode: s.writableObjectMode,
  readableEncoding: s.readableEncoding,
  pending: s.pending,
  destroyed: s.destroyed,
  endListeners: s.listenerCount('end'),
});

const cases = [
  undefined,
  {},
  { port: 80, host: '127.0.0.1', transport: 'force', ringCapacity: 65536, family: 4, timeout: 5 },
  { port: 80, allowHalfOpen: true },
  { allowHalfOpen: false },
  { allowHalfOpen: true, pauseOnCreate: true, readableHighWaterMark: getDefaultHighWaterMark(false), writableHighWaterMark: getDefaultHighWaterMark(false) },
  { readableHighWaterMark: 1024, writableHighWaterMark: 2048 },
  { highWaterMark: 100 },
  { readable: false },
  { writable: false, port: 1 },
  { noDelay: true, keepAlive: true, keepAliveInitialDelay: 3000 },
  { encoding: 'utf8' },
];

for (const options of cases) {
  test(`a RingSocket made from ${JSON.stringify(options)} is set up as net.Socket sets one up`, () => {
    const ring = new RingSocket(options);
    const tcp = new net.Socket(options);
    assert.equal(observed(ring), observed(tcp));
    ring.destroy();
    tcp.destroy();
  });
}

test('options that steer only the connect, or that the RingSocket applies, are kept from the constructor', () => {
  assert.is(constructorOptions(undefined), undefined);
  assert.is(constructorOptions({ port: 1, host: 'h', transport: 'auto', allowHalfOpen: true }), undefined);
  assert.is(constructorOptions({ readableHighWaterMark: getDefaultHighWaterMark(false), writableHighWaterMark: undefined }), undefined);
});

test('options the constructor acts on are passed to it whole', () => {
  for (const options of [{ port: 1, signal: new AbortController().signal }, { noDelay: true }, { readableHighWaterMark: 1 }, { fd: 99 }, { onread: {} }]) {
    assert.is(constructorOptions(options), options, JSON.stringify(Object.keys(options)));
  }
});

test('objectMode is refused as net.Socket refuses it', () => {
  assert.throws(() => new RingSocket({ objectMode: true }), (err) => err.code === 'ERR_INVALID_ARG_VALUE');
});

test.run();
