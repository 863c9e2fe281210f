// The peers under test and how the main thread sets each one up. Suite 'threads': a JS peer is
// one worker script run twice (producer + consumer, or ping + pong) over resources made here; the
// C ring is a separate program (c/spsc.c) that runs both threads itself. Suite 'process': one
// child-process script (children/) run twice, one side listening and the other connecting.

import { MessageChannel } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { Ring, RESERVED_BYTES, createSharedMemory } from '../../dist/index.js';

const align64 = (n) => Math.ceil(n / 64) * 64;

/** Shared memory with rings A and B, then the copy variant's source and destination areas. */
function xwaySetup({ capacity, maxChunk }) {
  const ringA = RESERVED_BYTES;
  const ringB = align64(ringA + Ring.byteLength(capacity));
  const srcAddr = align64(ringB + Ring.byteLength(capacity));
  const dstAddr = align64(srcAddr + maxChunk + 256); // room for the pattern's offsets (< 251)
  const memory = createSharedMemory({ bytes: dstAddr + maxChunk + 128 - RESERVED_BYTES });
  Ring.create(memory, ringA, capacity);
  Ring.create(memory, ringB, capacity);
  return { shared: { memory, ringA, ringB, srcAddr, dstAddr } };
}

function ringbufSetup({ capacity }) {
  return {
    shared: {
      sabA: RingBuffer.getStorageForCapacity(capacity, Uint8Array),
      sabB: RingBuffer.getStorageForCapacity(capacity, Uint8Array),
    },
  };
}

function messagePortSetup() {
  const { port1, port2 } = new MessageChannel();
  return { perRole: [{ port: port1 }, { port: port2 }], transfer: [[port1], [port2]] };
}

export const SUITES = ['threads', 'process'];

const THREAD_PEERS = [
  { id: 'xway-copy', label: 'xway copy', script: 'xway-copy.mjs', setup: xwaySetup,
    note: 'writeFrom/readTo between areas of the shared memory (memory.copy in the core)' },
  { id: 'xway-js', label: 'xway js', script: 'xway-js.mjs', setup: xwaySetup,
    note: 'write(Uint8Array)/readInto(Uint8Array) with JS buffers (TypedArray.set)' },
  { id: 'xway-zero-copy', label: 'xway zero-copy', script: 'xway-zero-copy.mjs', setup: xwaySetup,
    note: 'writeSpans + span.set(src) + commit / readSpans + check 1 byte per 64-B line + release (one copy in total)' },
  { id: 'ringbuf', label: 'ringbuf.js', script: 'ringbuf.mjs', setup: ringbufSetup,
    note: 'ringbuf.js 0.4.0 RingBuffer<Uint8Array> push/pop' },
  { id: 'messageport', label: 'MessagePort', script: 'messageport.mjs', setup: messagePortSetup,
    note: 'postMessage of Uint8Arrays (structured clone), event-driven; stream with credit flow control' },
  { id: 'c', label: 'C ring', native: true,
    note: 'C11 SPSC ring, memcpy, two pthreads (c/spsc.c, cc -O2 -pthread)' },
];

const PROCESS_PEERS = [
  { id: 'host-busy', label: 'xway host busy-poll', script: 'children/xway-host.mjs', transport: 'xway', policy: 'busy',
    note: 'host channel (listenHost/connectHost), writeFrom/readTo; both sides spin on the ring, no waits, no notifications' },
  { id: 'host-notify', label: 'xway host notify', script: 'children/xway-host.mjs', transport: 'xway', policy: 'notify',
    note: 'same, event-driven: prepareWait* + armWake() + onwake when stuck, notify() when peerNeedsWake; never spins' },
  { id: 'host-spin', label: 'xway host spin 50µs+notify', script: 'children/xway-host.mjs', transport: 'xway', policy: 'spin',
    note: 'same, but busy-polls up to 50 µs before announcing a wait', full: true },
  { id: 'tcp', label: 'TCP loopback', script: 'children/socket.mjs', transport: 'tcp',
    note: 'net sockets on 127.0.0.1, chunk-size writes (drain flow control), setNoDelay(true) for RR' },
  { id: 'unix', label: 'Unix socket', script: 'children/socket.mjs', transport: 'unix',
    note: 'the same over a Unix domain socket in a temp dir' },
];

export const PEERS = [
  ...THREAD_PEERS.map((p) => ({ ...p, suite: 'threads' })),
  ...PROCESS_PEERS.map((p) => ({ ...p, suite: 'process' })),
];
