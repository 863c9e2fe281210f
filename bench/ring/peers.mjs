// The peers under test and how the main thread sets each one up. A JS peer is one worker script
// run twice (producer + consumer, or ping + pong) over resources made here; the C ring is a
// separate program (c/spsc.c) that runs both threads itself.

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

export const PEERS = [
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
