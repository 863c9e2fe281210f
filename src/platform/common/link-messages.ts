// The records of a link's control channel: 32 bytes each, little-endian, fixed layout.
//
//   0  type u8          2  short u16 (REFUSE: reason; OPEN: listening port)
//   4  slot u32         8  generation u32
//   12 chunk u32        16 offset u32 (bytes into the chunk)
//   20 capacityA u32    24 capacityB u32     28 extra u32 (ACCEPT: ephemeral port; OPEN: the
//                                             ephemeral port the initiator took from a PORTS
//                                             grant, or 0 for the acceptor to choose one)
//
// GROW uses slot = chunk index, offset = the chunk's place in the region (in 64 KiB pages),
// capacityA = its size (pages); LIMIT (acceptor to initiator) uses slot = the first chunk the
// acceptor did not map, being past its own limit. PORTS (acceptor to initiator) has its own
// layout: 1 count u8 (1..12), 2 listening port u16, 4 the listener's epoch u16, 6 log2 of the
// largest ring capacity it grants u8, 8.. count ephemeral ports u16 the initiator may use for its
// next connections to that listener. Every field is the peer's word and is checked by the reader.

export const RECORD_BYTES = 32;

export enum Op {
  Open = 1,
  Accept = 2,
  Refuse = 3,
  Closed = 4,
  Grow = 5,
  Limit = 6,
  Ports = 7,
}

/** Ports one PORTS record carries at most. */
export const PORTS_PER_RECORD = 12;

export const REFUSALS = ['not-listening', 'limit', 'malformed', 'busy', 'closing', 'capacity'] as const;
/** What a refusal means, for the client's error message. */
export const REFUSAL_TEXT: Record<(typeof REFUSALS)[number], string> = {
  'not-listening': 'nothing listens on that port',
  limit: 'a limit of the server (ephemeral ports, connections)',
  malformed: 'the request was not acceptable',
  busy: 'the server is busy',
  closing: 'the listener is closing',
  capacity: "the ring capacity asked for is above the server's maximum",
};
export type Refusal = (typeof REFUSALS)[number];

export interface Open { op: Op.Open; slot: number; generation: number; chunk: number; offset: number; capacityA: number; capacityB: number; port: number; clientPort: number }
export interface Accept { op: Op.Accept; slot: number; generation: number; port: number }
export interface Refuse { op: Op.Refuse; slot: number; generation: number; reason: Refusal }
export interface Closed { op: Op.Closed; slot: number; generation: number }
export interface Grow { op: Op.Grow; chunk: number; pageOffset: number; pages: number }
export interface Limit { op: Op.Limit; chunk: number }
export interface Ports { op: Op.Ports; listenPort: number; epoch: number; maxCapacityLog2: number; ports: number[] }
export type LinkMessage = Open | Accept | Refuse | Closed | Grow | Limit | Ports;

export function encodeRecord(m: LinkMessage, out: DataView = new DataView(new ArrayBuffer(RECORD_BYTES))): DataView {
  for (let i = 0; i < RECORD_BYTES; i += 4) out.setUint32(i, 0, true);
  out.setUint8(0, m.op);
  switch (m.op) {
    case Op.Open:
      out.setUint16(2, m.port, true);
      out.setUint32(4, m.slot, true); out.setUint32(8, m.generation, true);
      out.setUint32(12, m.chunk, true); out.setUint32(16, m.offset, true);
      out.setUint32(20, m.capacityA, true); out.setUint32(24, m.capacityB, true);
      out.setUint32(28, m.clientPort, true);
      break;
    case Op.Accept:
      out.setUint32(4, m.slot, true); out.setUint32(8, m.generation, true); out.setUint32(28, m.port, true);
      break;
    case Op.Refuse:
      out.setUint16(2, REFUSALS.indexOf(m.reason), true);
      out.setUint32(4, m.slot, true); out.setUint32(8, m.generation, true);
      break;
    case Op.Closed:
      out.setUint32(4, m.slot, true); out.setUint32(8, m.generation, true);
      break;
    case Op.Grow:
      out.setUint32(4, m.chunk, true); out.setUint32(16, m.pageOffset, true); out.setUint32(20, m.pages, true);
      break;
    case Op.Limit:
      out.setUint32(4, m.chunk, true);
      break;
    case Op.Ports:
      out.setUint8(1, Math.min(m.ports.length, PORTS_PER_RECORD));
      out.setUint16(2, m.listenPort, true); out.setUint16(4, m.epoch, true); out.setUint8(6, m.maxCapacityLog2);
      for (let i = 0; i < Math.min(m.ports.length, PORTS_PER_RECORD); i++) out.setUint16(8 + 2 * i, m.ports[i], true);
      break;
  }
  return out;
}

/** A record's fields as found (types and ranges are the caller's checks), or null for an unknown type. */
export function decodeRecord(v: DataView): LinkMessage | null {
  const u32 = (at: number) => v.getUint32(at, true);
  switch (v.getUint8(0)) {
    case Op.Open:
      return { op: Op.Open, port: v.getUint16(2, true), slot: u32(4), generation: u32(8), chunk: u32(12), offset: u32(16), capacityA: u32(20), capacityB: u32(24), clientPort: u32(28) };
    case Op.Accept:
      return { op: Op.Accept, slot: u32(4), generation: u32(8), port: u32(28) };
    case Op.Refuse:
      return { op: Op.Refuse, slot: u32(4), generation: u32(8), reason: REFUSALS[v.getUint16(2, true)] ?? 'malformed' };
    case Op.Closed:
      return { op: Op.Closed, slot: u32(4), generation: u32(8) };
    case Op.Grow:
      return { op: Op.Grow, chunk: u32(4), pageOffset: u32(16), pages: u32(20) };
    case Op.Limit:
      return { op: Op.Limit, chunk: u32(4) };
    case Op.Ports: {
      // A count past the record's room reads as many as there is room for: the reader checks each.
      const n = Math.min(v.getUint8(1), PORTS_PER_RECORD);
      const ports: number[] = [];
      for (let i = 0; i < n; i++) ports.push(v.getUint16(8 + 2 * i, true));
      return { op: Op.Ports, listenPort: v.getUint16(2, true), epoch: v.getUint16(4, true), maxCapacityLog2: v.getUint8(6), ports };
    }
    default:
      return null;
  }
}
