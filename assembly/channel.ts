// A channel: the two rings of one connection (the XWAY "dual channel") in one region, so that a
// single mapping of a single segment connects two peers.
//
//   base +   0  control block (256 bytes): magic, version, the two capacities; the route
//               (bytes 16-127, the link layer's); each ring's stage record (128, 192: its
//               producer's, see src/ring/ring.ts useStageRecord)
//   base + 256  ring A: initiator -> acceptor
//   base + 512 + capA  ring B: acceptor -> initiator

import {
  CACHE_LINE, CHANNEL_MAGIC, CHANNEL_VERSION, CHANNEL_HEADER, RING_HEADER,
  C_MAGIC, C_VERSION, C_CAPACITY_A, C_CAPACITY_B,
} from "./layout";
import { E_ARGUMENT, E_HEADER } from "./status";
import { ringInit, ringCheck } from "./ring";

/** Bytes a channel with these capacities occupies, or E_ARGUMENT. */
export function channelSize(capA: u32, capB: u32): i32 {
  const size = <u64>CHANNEL_HEADER + <u64>RING_HEADER * 2 + <u64>capA + <u64>capB;
  return size > <u64>0x7fff_ffff ? E_ARGUMENT : <i32>size;
}

export function channelRingA(base: u32): i32 {
  return <i32>(base + CHANNEL_HEADER);
}

export function channelRingB(base: u32, capA: u32): i32 {
  return <i32>(base + CHANNEL_HEADER + RING_HEADER + capA);
}

/** Lays out a fresh channel at `base` (the side that creates the shared region). */
export function channelInit(base: u32, capA: u32, capB: u32): i32 {
  if ((base & (CACHE_LINE - 1)) != 0 || channelSize(capA, capB) < 0) return E_ARGUMENT;
  let err = ringInit(channelRingA(base), capA);
  if (err < 0) return err;
  err = ringInit(channelRingB(base, capA), capB);
  if (err < 0) return err;
  memory.fill(base, 0, CHANNEL_HEADER);
  store<u32>(base + C_VERSION, CHANNEL_VERSION);
  store<u32>(base + C_CAPACITY_A, capA);
  store<u32>(base + C_CAPACITY_B, capB);
  atomic.store<u32>(base + C_MAGIC, CHANNEL_MAGIC);
  return 0;
}

/** Checks a channel laid out by the peer against the capacities agreed during set-up. */
export function channelCheck(base: u32, capA: u32, capB: u32): i32 {
  if ((base & (CACHE_LINE - 1)) != 0 || channelSize(capA, capB) < 0) return E_ARGUMENT;
  let err = ringCheck(channelRingA(base), capA);
  if (err < 0) return err;
  err = ringCheck(channelRingB(base, capA), capB);
  if (err < 0) return err;
  if (atomic.load<u32>(base + C_MAGIC) != CHANNEL_MAGIC
    || load<u32>(base + C_VERSION) != CHANNEL_VERSION
    || load<u32>(base + C_CAPACITY_A) != capA
    || load<u32>(base + C_CAPACITY_B) != capB) return E_HEADER;
  return 0;
}
