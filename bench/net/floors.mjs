// Floors of the socket layer's data path, measured in one process with no ring protocol and no
// peer, for bench:user to set beside its targets (docs/bench.md, "Ceilings"). Prints one JSON line.
//   MODE=write1k  1 KiB writes as user-client.mjs makes them (write() until false, then 'drain';
//                 the clock read per write), into a Duplex whose _write only copies the chunk into
//                 a SharedArrayBuffer and calls back: Node's stream machinery plus the one copy
//                 any shared-memory transport makes. GB/s.
//   MODE=read64k  64 KiB copies out of shared memory into fresh 512 KiB slabs, as the receive pool
//                 makes them (src/socket/receive-pool.ts: allocUnsafeSlow slabs, the addon's
//                 memcpy, freed heap kept mapped): the copy that handing every read to the
//                 program as a Buffer of its own costs. GB/s.
import { Duplex } from 'node:stream';
import { nativeAddon } from '../../dist/platform/host/native.js';

const mode = process.env.MODE;
const ms = Number(process.env.DUR_MS ?? 1000);
const warmMs = Number(process.env.WARM_MS ?? 200);
const RING = 256 * 1024;
const shared = new Uint8Array(new SharedArrayBuffer(RING)).fill(7);

async function write1k(forMs) {
  let at = 0;
  const sink = new Duplex({
    read() {},
    write(chunk, encoding, callback) {
      shared.set(chunk, at);
      at = (at + chunk.length) & (RING - 1);
      callback();
    },
  });
  const data = Buffer.alloc(1024, 1);
  let writes = 0;
  const start = performance.now();
  const deadline = start + forMs;
  await new Promise((resolve) => {
    const pump = () => {
      while (performance.now() < deadline) {
        writes++;
        if (!sink.write(data)) return void sink.once('drain', pump);
      }
      resolve();
    };
    pump();
  });
  return (writes * 1024) / (performance.now() - start) / 1e6;
}

function read64k(forMs) {
  const addon = nativeAddon(); // the receive pool's own (local build or prebuild), or why not
  addon.keepHeapMemory?.();
  const CHUNK = 64 * 1024;
  const SLAB = 512 * 1024;
  let slab = null;
  let used = 0;
  let bytes = 0;
  const start = performance.now();
  const deadline = start + forMs;
  while (performance.now() < deadline) {
    for (let i = 0; i < 16; i++) {
      if (slab === null || SLAB - used < CHUNK) {
        slab = Buffer.allocUnsafeSlow(SLAB);
        used = 0;
      }
      addon.copyOut(shared, bytes & (RING - 1), slab, used, CHUNK);
      used += CHUNK;
      bytes += CHUNK;
    }
  }
  return bytes / (performance.now() - start) / 1e6;
}

const run = mode === 'write1k' ? write1k : mode === 'read64k' ? read64k : null;
if (!run) throw new Error(`MODE must be write1k or read64k, not ${mode}`);
await run(warmMs);
console.log(JSON.stringify({ value: await run(ms) }));
