// What the coordinator and the two bench peers agree on: the tests, the transports, one
// measurement's specification, and what each side reports about it.

export const TESTS = ['stream', 'maerts', 'rr', 'crr'] as const;
export type TestName = (typeof TESTS)[number];
export const TRANSPORTS = ['ring', 'tcp', 'unix'] as const;
export type TransportName = (typeof TRANSPORTS)[number];
/** Extra measurements bench:net adds (not a --test value). */
export type SpecTest = TestName | 'idle';

export interface Spec {
  test: SpecTest;
  transport: TransportName;
  /** stream/maerts: bytes per write. */
  size: number;
  /** rr/crr: request and response sizes. */
  request: number;
  response: number;
  warmupMs: number;
  durationMs: number;
  /** Ring capacity each direction (ring transport), 0 for xway's default. */
  ringCapacity: number;
  /** The Unix socket's path (unix transport). */
  socketPath: string;
  /** '' (this machine: the server listens on 127.0.0.1), or, with --peer, the server peer's
   *  address: it listens on every address and the client connects to this one. */
  host: string;
}

/** One side's CPU time over its measured window, as a rate: CPU seconds per wall second. */
export interface CpuRate {
  rate: number;
  windowS: number;
}

export interface SideResult {
  /** What socket.transport said (net sockets: the transport name given). */
  transport: string;
  cpu: CpuRate;
  /** Receiver of a stream: bytes counted in its window, and the window. */
  bytes?: number;
  seconds?: number;
  /** Every byte received or sent, warm-up included. */
  total?: number;
  /** rr/crr client: transactions in the window, and per-transaction µs statistics. */
  transactions?: number;
  meanUs?: number;
  p50Us?: number;
  p99Us?: number;
}

/** Messages, parent → peer. */
export type ToPeer =
  | { type: 'serve'; id: number; spec: Spec }
  | { type: 'run'; id: number; spec: Spec; address: PeerAddress }
  | { type: 'stop'; id: number }
  | { type: 'exit' };

export type PeerAddress = { port: number } | { path: string };

/** Messages, peer → parent. */
export type FromPeer =
  | { id: number; listening: PeerAddress }
  | { id: number; result: SideResult }
  | { id: number; error: string }
  | { ready: true }
  | { fatal: string };
