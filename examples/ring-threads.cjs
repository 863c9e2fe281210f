// examples/ring-threads.mjs from CommonJS: require('xway') gives the same API (Node >= 20.19
// require()s the ES module package). Run: node examples/ring-threads.cjs
const { Worker, isMainThread, workerData } = require('node:worker_threads');
const { Channel, createSharedMemory, waitForData, waitForDataAsync, wakeConsumer, RESERVED_BYTES } = require('xway');

const caps = { capacityA: 4096 };

async function main() {
  const memory = createSharedMemory({ bytes: Channel.byteLength(4096) });
  const channel = Channel.create(memory, RESERVED_BYTES, caps);
  const worker = new Worker(__filename, { workerData: { memory } });
  for (const line of ['hello', 'shared memory', 'no syscalls on the data path']) {
    channel.tx.write(Buffer.from(line));
    if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx);
    let reply;
    while (!(reply = channel.rx.read())) await waitForDataAsync(channel.rx);
    console.log(`${line} -> ${reply}`);
  }
  channel.tx.end();
  if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx);
  worker.on('exit', () => console.log('worker saw end of stream and exited'));
}

function upperCaseEcho() {
  const channel = Channel.attach(workerData.memory, RESERVED_BYTES, caps, 'acceptor');
  for (;;) {
    const request = channel.rx.read();
    if (request) {
      channel.tx.write(Buffer.from(request.toString().toUpperCase()));
      if (channel.tx.peerNeedsWake) wakeConsumer(channel.tx);
    } else if (channel.rx.ended) {
      return;
    } else {
      waitForData(channel.rx);
    }
  }
}

if (isMainThread) main();
else upperCaseEcho();
