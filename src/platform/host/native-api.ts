// Types of the native addon (the C layer in native/: a local build or a prebuilt binary; loaded by native.ts).
// Errors: system failures are `Error & { code: 'EBADF' | …, errno: number
// (positive, as in os.constants.errno), syscall: string }`; bad argument
// types are TypeError (code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE),
// bad numbers RangeError (code ERR_OUT_OF_RANGE).

export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** Handle with libuv ref counting (like net.Server). */
export interface Refable {
  ref(): void;
  unref(): void;
  /** Idempotent; closes every descriptor the object owns, synchronously. */
  close(): void;
}

export declare class EventChannel implements Refable {
  /** `onEvents` runs once per loop turn with every port that fired (each once). */
  constructor(onEvents: (ports: number[]) => void);
  /** Local port (1, 2, …, lowest free) and its eventfd, to hand to the peer. */
  allocPort(): { port: number; fd: number };
  /** Take ownership of the peer's eventfd for `port`; replaces an earlier binding. */
  bind(port: number, remoteFd: number): void;
  /** Signal the peer bound to `port`. */
  notify(port: number): void;
  /** Close the port's local eventfd and bound remote fd; the number is reused. */
  closePort(port: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export declare class CtlSocket implements Refable {
  /** Takes ownership of `fd` (a SOCK_SEQPACKET socket) when it returns. */
  constructor(
    fd: number,
    onMessage: (data: Buffer, fds: number[]) => void,
    /** Once: null for orderly EOF, else an errno code ('ECONNRESET', 'EMSGSIZE', …). */
    onClose: (errCode: string | null) => void,
  );
  /** 1..65536 bytes, up to 8 descriptors (duplicated into the peer). */
  send(data: ArrayBufferView, fds?: number[] | null): void;
  /** As the kernel recorded them at connect (mapped into our user namespace); `groups`: the
   *  peer's supplementary groups (SO_PEERGROUPS). */
  peerCredentials(): { pid: number; uid: number; gid: number; groups: number[] };
  /** Handles messages that have already arrived (calling onMessage / onClose) now, instead of at
   *  the loop's next poll. */
  receiveNow(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface CtlListener extends Refable {}

/** Watches ring words from the event loop (native/src/poller.c); never keeps the loop alive. */
export declare class RingPoller {
  /** `onDone` runs once per loop turn with (id, status, cpuNs) triples: status 1 a word changed (3:
   *  seen after a late yield), 0 the budget ran out, 2 the vCPU is contended (a yield ran someone
   *  else); cpuNs what it cost. */
  constructor(onDone: (done: number[]) => void);
  /** Registers a shared memory (a Uint8Array over all of it) and returns its index; the same
   *  memory keeps its index (a longer view extends what may be watched). Held for good. */
  addMemory(memory: Uint8Array): number;
  /** Reports `id` once the u32 at byte `addrA` of memory `memoryIndex` is no longer `valueA`, or
   *  the one at `addrB` no longer `valueB`, or it spent `budgetNs` of this thread's CPU time (or a
   *  millisecond of wall time). */
  watch(id: number, memoryIndex: number, addrA: number, valueA: number, addrB: number, valueB: number, budgetNs: number): void;
  /** Forgets `id` without a report. */
  cancel(id: number): void;
}

/** Callbacks from the loop phases a TCP socket's events come from (native/src/phases.c). */
export declare class LoopPhases {
  constructor(onPoll: () => void, onClose: (id: number) => void);
  /** One onPoll() in the loop's next poll phase (this turn's, when asked before it). */
  poll(): void;
  /** onClose(id) in this turn's close phase, where a closed TCP handle's callback runs. */
  close(id: number): void;
  /** Word 0 counts the loop's turns (it changes just after each poll phase). */
  readonly turn: Int32Array;
}

export interface XwayNativeLinux {
  platformAvailable: true;
  unavailableReason: null;
  /** memfd of `size` bytes (multiple of 65536, ≤ 1 GiB), sealed against resizing. */
  segmentCreate(size: number): number;
  /** mmap `fd` (from `fileOffset`, default 0) over view[offset, offset+size); `view` = new
   *  Uint8Array(sharedMemory.buffer). The memfd must be sealed against shrinking and hold the range. */
  segmentMap(view: Uint8Array, offset: number, size: number, fd: number, fileOffset?: number): void;
  /** A link's region: a memfd of `size` bytes (a multiple of 65536), sealed against shrinking only. */
  regionCreate(size: number): number;
  /** Makes the region `size` bytes (never smaller than it is). */
  regionGrow(fd: number, size: number): void;
  /** Gives the pages of [fileOffset, fileOffset+length) back to the system (whole 4 KiB pages). */
  regionDiscard(fd: number, fileOffset: number, length: number): void;
  /** Replace the range with private zero pages (the memory stays valid). */
  segmentUnmap(view: Uint8Array, offset: number, size: number): void;
  closeFd(fd: number): void;
  /** memcpy `length` bytes from `src` (from `srcOffset`) to `memory` at `address`; both ranges checked. */
  copyIn(memory: Uint8Array, address: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** memcpy `length` bytes from `memory` at `address` to `dst` (from `dstOffset`); both ranges checked. */
  copyOut(memory: Uint8Array, address: number, dst: Uint8Array, dstOffset: number, length: number): void;
  /** Keeps freed receive memory mapped (glibc's mmap and trim thresholds, see native/src/heap.c);
   *  false where that cannot be done. Missing from addons built before it. */
  keepHeapMemory?(): boolean;
  RingPoller: typeof RingPoller;
  /** Missing from addons built before it (a stale prebuilt): the caller falls back to setImmediate. */
  LoopPhases?: typeof LoopPhases;
  EventChannel: typeof EventChannel;
  CtlSocket: typeof CtlSocket;
  /** Socket file is chmod 0600; connections from another euid are dropped. */
  ctlListen(path: string, onConnection: (fd: number) => void): CtlListener;
  /** Connected, non-blocking, close-on-exec fd; wrap it in a CtlSocket. */
  ctlConnect(path: string): number;
}

export interface XwayNativeUnavailable {
  platformAvailable: false;
  unavailableReason: string;
}

export type XwayNative = XwayNativeLinux | XwayNativeUnavailable;
