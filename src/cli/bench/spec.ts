// What the coordinator and the two bench peers agree on: the tests, the transports, one
// measurement's specification, and what each side reports about it.

export const TESTS = ['stream', 'maerts', 'rr', 'crr', 'conns', 'conns100k'] as const;
export type TestName = (typeof TESTS)[number];
/** What runs without --test: the four netperf tests (conns and conns100k are asked for). */
export const DEFAULT_TESTS: TestName[] = ['stream', 'maerts', 'rr', 'crr'];
export const TRANSPORTS = ['ring', 'tcp', 'unix'] as const;
export type TransportName = (typeof TRANSPORTS)[number];
/** Extra measurements bench:net adds (not a --test value), and the parts of conns (conns.ts). */
export type SpecTest = Exclude<TestName, 'conns' | 'conns100k'> | 'idle' | 'conns-parallel' | 'conns-scale';

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
  /** conns: listening ports the server opens (conns100k spreads connections over several). */
  ports?: number;
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

/** What a peer says about itself (conns): from the kernel's /proc/self and process.cpuUsage. */
export interface Probe {
  /** CPU time used so far, user + system, µs: before the probe's own garbage collection, and
   *  after it (a window from one probe to the next runs from cpuAfterUs to cpuUs). */
  cpuUs: number;
  cpuAfterUs: number;
  /** Open descriptors. */
  fds: number;
  /** Resident memory, and its shared-memory part (VmRSS, RssShmem), KiB. */
  rssKiB: number;
  shmemKiB: number;
  /** Resident KiB of the xway link regions mapped here (their smaps Rss). */
  linkKiB: number;
  /** Connections this peer holds open. */
  connections: number;
}

/** conns: connections opened (and held) by a client peer. */
export interface Opened {
  ms: number;
  ok: number;
  failed: number;
  firstError: string;
  /** socket.transport of those that connected, counted. */
  transports: Record<string, number>;
}

/** conns: each held connection echoed `bytes`, every byte compared. */
export interface Traffic {
  ms: number;
  bad: number;
  failed: number;
  firstError: string;
}

/** Messages, parent → peer. */
export type ToPeer =
  | { type: 'serve'; id: number; spec: Spec }
  | { type: 'run'; id: number; spec: Spec; address: PeerAddress }
  | { type: 'stop'; id: number }
  /** conns: open (and hold) `n` more connections, `window` set-ups in flight at once. */
  | { type: 'open'; id: number; spec: Spec; address: PeerAddress; n: number; window: number }
  /** conns: `n` connections at once, each connect, 1 B request, 1 B response, close. */
  | { type: 'parallel'; id: number; spec: Spec; address: PeerAddress; n: number }
  | { type: 'traffic'; id: number; bytes: number }
  | { type: 'closeAll'; id: number }
  /** `collect`: a full garbage collection first (memory figures); CPU-only probes skip it. */
  | { type: 'probe'; id: number; collect?: boolean }
  | { type: 'exit' };

export type PeerAddress = { port: number } | { path: string } | { ports: number[] };

/** Messages, peer → parent. */
export type FromPeer =
  | { id: number; listening: PeerAddress }
  | { id: number; result: SideResult }
  | { id: number; opened: Opened }
  | { id: number; traffic: Traffic }
  | { id: number; probe: Probe }
  | { id: number; done: { ms: number } }
  | { id: number; error: string }
  | { ready: true }
  | { fatal: string };
