// What a program can observe of a socket, recorded in order: the differential semantics suite
// compares these records between plain TCP and every ring platform.
//
// A log is an array of strings, one per event:
//   connect, ready, lookup, end, finish, timeout, drain, close:<hadError>
//   data:<bytes>        consecutive 'data' events coalesced into one byte total (chunking differs
//                       between transports, and between runs of the same one)
//   error:<code>:<syscall>   (':<syscall>' only when the error has one)
//   <tag>:ok / <tag>:<code>  a write callback (ctx.write(socket, data, tag))
//   anything a scenario notes itself (ctx.note)
// Entries that start with '!' are the harness's own complaints (a step that timed out, a role that
// threw, a connection on the wrong transport): any of them fails the scenario.

/** Properties net defines on a socket, read at one moment. */
export const SNAPSHOT_FIELDS = [
  'bufferSize', 'writableLength', 'bytesWritten', 'bytesRead', 'pending', 'readyState', 'connecting',
  'localPort', 'remotePort', 'remoteAddress', 'remoteFamily', 'localAddress', 'localFamily',
  'destroyed', 'readable', 'writable', 'allowHalfOpen', 'timeout',
];

export function snapshot(socket) {
  const snap = {};
  const read = (fn) => {
    try {
      const value = fn();
      return value === undefined ? UNDEFINED : value; // survives JSON, unlike undefined itself
    } catch (err) {
      return `!throws ${err.code ?? err.message}`;
    }
  };
  for (const field of SNAPSHOT_FIELDS) snap[field] = read(() => socket[field]);
  snap.address = read(() => socket.address());
  return snap;
}

/** How a snapshot records a property that is undefined (harness.js compares it so). */
export const UNDEFINED = '(undefined)';

/** The plain-data form of an error (what crosses a process boundary). */
export function errorInfo(err) {
  if (!err) return null;
  const info = { code: err.code, name: err.name, message: err.message };
  for (const key of ['syscall', 'errno', 'address', 'port']) if (err[key] !== undefined) info[key] = err[key];
  return info;
}

export const errorEntry = (err) => `error:${err.code ?? err.name}${err.syscall ? `:${err.syscall}` : ''}`;

/** Appends to `log`, merging consecutive data entries. */
export function addData(log, n) {
  const last = log[log.length - 1];
  if (typeof last === 'string' && last.startsWith('data:')) log[log.length - 1] = `data:${Number(last.slice(5)) + n}`;
  else log.push(`data:${n}`);
}

/**
 * Records `socket`'s events into `log` (an array) and its errors into `errors`. 'data' is counted
 * by wrapping the socket's emit, not with a listener: a 'data' listener would switch a fresh socket
 * to flowing mode and so change what it reads (and so whether a close leaves data unread).
 */
export function track(socket, log, errors) {
  for (const event of ['connect', 'ready', 'lookup', 'end', 'finish', 'timeout', 'drain']) socket.on(event, () => log.push(event));
  socket.on('error', (err) => {
    log.push(errorEntry(err));
    errors.push(errorInfo(err));
  });
  socket.on('close', (hadError) => log.push(`close:${hadError}`));
  // 'data' as the program sees it: every chunk the stream hands out, whether through 'data'
  // events or read(). Counting at emit time keeps the mode (paused or flowing) the program chose.
  const emit = socket.emit;
  socket.emit = function (event, ...args) {
    if (event === 'data') addData(log, args[0].length);
    return emit.call(this, event, ...args);
  };
  return socket;
}
