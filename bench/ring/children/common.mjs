// What both child-process peers share: the configuration from the command line, the exchange
// with the parent over the IPC channel, and leaving cleanly.
//
//   child  -> {listening: address}   (listening side only: where the other child connects)
//   parent -> {connect: address}     (connecting side only; both children start at once)
//   child  -> {ready: true}          connected and set up
//   parent -> {go: true}             both are ready: start the clock
//   child  -> {result: {...}}        then the child closes everything and exits by itself
//
// A child whose parent goes away exits at once; one that is still running GRACE_MS after its
// planned end reports itself stuck (the parent also kills what has not exited in time).

export const config = JSON.parse(process.argv[2]);
export const now = () => performance.now();
/** A run still going this long past its end has a stuck peer: report failure instead of a number. */
export const GRACE_MS = 5000;

let finished = false;
process.on('disconnect', () => {
  if (!finished) process.exit(3); // the parent is gone
});

export function send(message) {
  process.send(message);
}

/** The listening child's address, from the parent. */
export function connectAddress() {
  return new Promise((resolve) => {
    process.on('message', function onMessage(m) {
      if (m && m.connect !== undefined) {
        process.off('message', onMessage);
        resolve(m.connect);
      }
    });
  });
}

/** Tells the parent this side is set up; calls `start` when it says go. */
export function ready(start) {
  process.on('message', function onMessage(m) {
    if (m && m.go) {
      process.off('message', onMessage);
      start();
    }
  });
  send({ ready: true });
}

/** Sends the result, then runs `cleanup` and lets go of the IPC channel: with every handle
 *  closed the process exits by itself (the parent counts one that does not as a failure). */
export function finish(result, cleanup = () => {}) {
  if (finished) return;
  finished = true;
  process.send({ result }, () => {
    cleanup();
    process.disconnect();
  });
}
