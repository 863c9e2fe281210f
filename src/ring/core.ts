// Loading the wasm ring core: one compiled module per thread, one instance per shared memory.
// Instances hold no state (see assembly/index.ts), so many of them over one memory — in threads
// or in processes that map the same pages — all see the same rings.

import { CORE_WASM_BASE64 } from './wasm-bytes.generated.js';
import { RingClosedError, RingCorruptError, RingResetError, RingShutdownError, XwayError, XwayRangeError } from '../errors.js';

/** The exports of assembly/index.ts. All arguments and results are 32-bit integers. */
export interface CoreExports {
  ringInit(ring: number, cap: number): number;
  ringCheck(ring: number, cap: number): number;
  ringFlags(ring: number, cap: number): number;
  ringReserve(ring: number, cap: number, want: number): number;
  ringProducerAddress(ring: number, cap: number): number;
  ringCommit(ring: number, cap: number, n: number): number;
  ringWrite(ring: number, cap: number, src: number, len: number): number;
  ringPrepareWaitSpace(ring: number, cap: number, need: number): number;
  ringCancelWaitSpace(ring: number, cap: number): number;
  ringShutdown(ring: number, cap: number): number;
  ringPeek(ring: number, cap: number, want: number): number;
  ringConsumerAddress(ring: number, cap: number): number;
  ringRelease(ring: number, cap: number, n: number): number;
  ringRead(ring: number, cap: number, dst: number, len: number): number;
  ringPrepareWaitData(ring: number, cap: number): number;
  ringCancelWaitData(ring: number, cap: number): number;
  ringCloseConsumer(ring: number, cap: number): number;
  ringAbort(ring: number, cap: number): number;
  channelSize(capA: number, capB: number): number;
  channelRingA(base: number): number;
  channelRingB(base: number, capA: number): number;
  channelInit(base: number, capA: number, capB: number): number;
  channelCheck(base: number, capA: number, capB: number): number;
}

/** Status codes from assembly/status.ts. */
export const E_ARGUMENT = -1;
export const E_HEADER = -2;
export const E_INDEX = -3;
export const E_SHUTDOWN = -4;
export const E_RESET = -5;
export const E_CLOSED = -6;
export const READY = 0;
export const WAIT = 1;

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, CoreExports>();

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Compiles the core asynchronously. Browsers refuse synchronous compilation of modules over
 *  4 KiB on their main thread, so pages call this once before creating rings there. */
export async function compileCore(): Promise<WebAssembly.Module> {
  compiled ??= await WebAssembly.compile(decodeBase64(CORE_WASM_BASE64));
  return compiled;
}

/** The compiled core module (compiled synchronously on first use), e.g. to post to a worker. */
export function coreModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(decodeBase64(CORE_WASM_BASE64));
  return compiled;
}

/** The core instance working on `memory` in this thread. */
export function coreFor(memory: WebAssembly.Memory): CoreExports {
  let core = instances.get(memory);
  if (!core) {
    const instance = new WebAssembly.Instance(coreModule(), { env: { memory } });
    core = instance.exports as unknown as CoreExports;
    instances.set(memory, core);
  }
  return core;
}

/** Turns a negative core status into a typed error; returns non-negative values unchanged. */
export function check(status: number, what: string): number {
  if (status >= 0) return status;
  switch (status) {
    case E_ARGUMENT: throw new XwayRangeError(`${what}: argument out of range`);
    case E_HEADER: throw new RingCorruptError(`${what}: ring header does not match (bad magic, version or capacity)`);
    case E_INDEX: throw new RingCorruptError(`${what}: impossible index in shared memory (tail - head exceeds capacity)`);
    case E_SHUTDOWN: throw new RingShutdownError(`${what}: write after end of stream`);
    case E_RESET: throw new RingResetError(`${what}: ring was reset`);
    case E_CLOSED: throw new RingClosedError(`${what}: the consumer closed the ring`);
    default: throw new XwayError('ERR_XWAY_CORE', `${what}: unknown core status ${status}`);
  }
}
