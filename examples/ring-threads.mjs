// Two threads, one channel: the main thread sends lines, a worker answers each in upper case.
// Run: node examples/ring-threads.mjs
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { Channel, createSharedMemory, waitForData, waitForDataAsync, wakeConsumer, RESERVED_BYTES } from 'xway';

const OFFSET = RESERVED_BYTES; // rings start after the reserved first page
const caps = { capacityA: 4096 };

if (isMainThread) {
  const memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
  const channel = Channel.create(memory, OFFSET, caps); // this side is the initiator
  const worker = new Worker(new URL(import.meta.url), { workerData: { memory } });

  for (const line of ['hello', 'shared memory', 'no syscalls on the data path']) {
    channel.tx.write(Buffer.from(line));
    if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx); // only when the worker said it waits
    let reply;
    while (!(reply = channel.rx.read())) await waitForDataAsync(channel.rx); // never blocks the event loop
    console.log(`${line} -> ${reply}`);
  }
  channel.tx.end();
  if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx);
  worker.on('exit', () => console.log('worker saw end of stream and exited'));
} else {
  const channel = Channel.attach(workerData.memory, OFFSET, caps, 'acceptor');
  for (;;) {
    const request = channel.rx.read();
    if (request) {
      channel.tx.write(Buffer.from(request.toString().toUpperCase()));
      if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx);
    } else if (channel.rx.ended) {
      break;
    } else {
      waitForData(channel.rx); // a worker may block
    }
  }
}
