// The shared-memory layout of a ring and of a channel.
//
// Everything here is a compile-time constant: the core keeps no state of its own in linear memory
// (every instance on a shared memory would clobber it, see DESIGN.md), so all state lives in the
// ring headers below and every call names its ring by address.
//
// A ring = 256-byte header + data area of `capacity` bytes (a power of two).
//
//   line 0 (  0.. 63)  identity and shutdown state, written once or rarely, read by both
//   line 1 ( 64..127)  producer-owned: tail index, its cached copy of head, its counters
//   line 2 (128..191)  consumer-owned: head index, its cached copy of tail, its counters
//   line 3 (192..255)  wait announcements, written only around a wait
//   data   (256..)     the bytes
//
// Head and tail are free-running u32 counters: position = index & (capacity - 1),
// bytes used = tail - head (mod 2^32), which is why capacity must divide 2^32.

export const CACHE_LINE: u32 = 64;

export const RING_MAGIC: u32 = 0x31525758; // "XWR1" little-endian
export const RING_VERSION: u32 = 1;
export const RING_HEADER: u32 = 256;
export const MIN_CAPACITY: u32 = 4096; // 4 KiB
export const MAX_CAPACITY: u32 = 64 << 20; // 64 MiB

// line 0
export const R_MAGIC: u32 = 0;
export const R_VERSION: u32 = 4;
export const R_CAPACITY: u32 = 8;
export const R_FLAGS: u32 = 12;

// line 1: written by the producer only
export const R_TAIL: u32 = 64;
export const R_HEAD_CACHE: u32 = 68;
export const R_PRODUCER_WAITS: u32 = 72; // wait announcements (including ones that found space at once)
export const R_PRODUCER_NOTIFIES: u32 = 76;
export const R_BYTES_IN: u32 = 80; // u64

// line 2: written by the consumer only
export const R_HEAD: u32 = 128;
export const R_TAIL_CACHE: u32 = 132;
export const R_CONSUMER_WAITS: u32 = 136; // wait announcements (including ones that found data at once)
export const R_CONSUMER_NOTIFIES: u32 = 140;
export const R_BYTES_OUT: u32 = 144; // u64

// line 3: announcements. Each word is also the futex word a thread waits on.
export const R_DATA_WAITING: u32 = 192; // consumer sets 1, producer clears it when it notifies
export const R_SPACE_WANTED: u32 = 196; // producer sets N>0, consumer clears it when it notifies

// R_FLAGS bits
export const FLAG_FIN: u32 = 1; // producer will write no more (end of stream)
export const FLAG_RST: u32 = 2; // either side aborted the connection
export const FLAG_CLOSED: u32 = 4; // the consumer closed: it reads nothing more (TCP's close())

// A channel = 256-byte control block + ring A (initiator -> acceptor) + ring B (acceptor -> initiator).
export const CHANNEL_MAGIC: u32 = 0x48435758; // "XWCH"
export const CHANNEL_VERSION: u32 = 1;
export const CHANNEL_HEADER: u32 = 256;
export const C_MAGIC: u32 = 0;
export const C_VERSION: u32 = 4;
export const C_CAPACITY_A: u32 = 8;
export const C_CAPACITY_B: u32 = 12;
// Bytes 16-127: the route (written by the link layer). Then each ring's stage record, on a line of
// its own that only its producer writes and nothing polls (src/ring/ring.ts, useStageRecord):
export const C_STAGE_A: u32 = 128; // u32 tail when staging began, u32 that tail + staged bytes
export const C_STAGE_B: u32 = 192;
