// A link: the one set-up two threads share for all their connections (docs/links.md). This file
// is what every platform's link has in common — chunk 0's header and pending sets, the control
// channel and its records, slots and generations, chunk allocation (initiator) and checking
// (acceptor), the doorbell handshake, and the link's death. A platform (host, threads) supplies
// only the pages, the doorbell and the lifeline (LinkPlatform).

import net from 'node:net';
import { Channel } from '../../ring/channel.js';
import { C_STAGE_A, channelByteLength, isValidCapacity, WASM_PAGE } from '../../ring/layout.js';
import { sharedBuffer, wholeView } from '../../ring/memory.js';
import { XwayError } from '../../errors.js';
import type { Route } from '../../socket/identity.js';
import type { ChannelEnd, ConnectionInfo, PlatformName } from '../types.js';
import { ChannelEndBase } from './channel-end.js';
import { checkLinkHeader, CHUNK0_BYTES, CONTROL_CAPACITY, initLinkHeader, LINK, MAX_SLOTS, type LinkSide } from './link-layout.js';
import { decodeRecord, encodeRecord, Op, PORTS_PER_RECORD, RECORD_BYTES, REFUSAL_TEXT, type LinkMessage, type Open, type Ports, type Refusal } from './link-messages.js';
import { PendingSet } from './pending.js';

/** A chunk as this side sees it: which memory, where, how big. */
export interface ChunkPlace {
  memory: WebAssembly.Memory;
  offset: number;
  bytes: number;
}

/** What a platform gives a link. */
export interface LinkPlatform {
  readonly name: PlatformName;
  readonly peer: ChannelEnd['peer'];
  /** Chunk 0, mapped on this side. */
  readonly chunk0: ChunkPlace;
  /** Initiator: makes the region larger by `pages` — or by less, down to `minPages`, where this
   *  side's limit leaves less room — and maps the new part as chunk `index`; returns where it is
   *  here, where in the region (in pages) and its size. Throws LinkLimitError at the limit. */
  addChunk(index: number, pages: number, minPages: number): { place: ChunkPlace; pageOffset: number; pages: number };
  /** Acceptor: maps chunk `index`, announced by the initiator at `pageOffset` with `pages`; throws
   *  LinkLimitError if it is past this side's limit, LinkError if the region does not hold it. */
  mapChunk(index: number, pageOffset: number, pages: number): ChunkPlace;
  /** Rings the peer's doorbell (`word`: the index, in an Int32Array over chunk 0's memory, of the
   *  peer's doorbell word, for a platform that wakes it there). */
  ring(word: number): void;
  /** This side armed its doorbell word `word` (a platform that waits on the word starts waiting;
   *  one with an eventfd needs nothing). */
  armDoorbell(word: number): void;
  /** Runs `fn` in the loop's next poll phase, where libuv reports a socket that has more to read
   *  (setImmediate where the platform cannot). */
  atNextPoll?(fn: () => void): void;
  /** Keeps the event loop alive (or not) for this link: while any connection on it is ref'd. */
  ref(): void;
  unref(): void;
  /** Releases mappings, descriptors and the lifeline. */
  close(): void;
  /** Handles a loss of the lifeline that has already happened (the peer's death: its kernel
   *  closed its descriptors) now, synchronously, instead of at the loop's next poll. */
  checkAlive?(): void;
  /** Where chunk `chunk`, byte `offset` is in a file an observer can read (xway stat), if any. */
  locate?(chunk: number, offset: number): { fd: number; fileOffset: number; ino?: number };
  /** Gives the pages of chunk `chunk`, bytes [offset, offset+length) (whole 4 KiB pages), back to
   *  the system in every process that maps them. Absent where pages cannot be given back. */
  discard?(chunk: number, offset: number, length: number): void;
  /** Makes the end of a connection on this link, for a platform whose ends are a class of their
   *  own (Xen's, which the socket layer and observers recognise). Default: a LinkChannelEnd. */
  createEnd?(link: Link, slot: number, generation: number, channel: Channel, chunk: number, chunkOffset: number): LinkChannelEnd;
}

/** What a link's acceptor asks its thread's listeners about an OPEN. */
export interface OpenRequest {
  /** The listening port the client asks for. */
  port: number;
  /** The ephemeral port the client took from a grant of ours (it may have emitted 'connect'
   *  already), or 0: we choose one and it waits for ACCEPT. */
  clientPort: number;
  capacityA: number;
  capacityB: number;
  route: Route;
}

/** The acceptor's answer: a refusal, or what the accepted end gets (its port) and who takes it. */
export type OpenDecision =
  | { refuse: Refusal; why: string }
  | { port: number; take: (end: ChannelEnd) => void; release: () => void; maxCapacity: number };

/** Default size of a chunk for channels (more when one channel needs more). */
const CHUNK_PAGES = 128; // 8 MiB
/** Rounds of drain-then-look before the doorbell handler lets the event loop run. */
const DRAIN_ROUNDS = 16;
/** How long an initiator waits, at first, before it reads CLOSED records the acceptor wrote
 *  without waking it (doubling up to REAP_MAX_MS while some are still owed). */
const REAP_MS = 50;
const REAP_MAX_MS = 2000;
/** Ports an initiator keeps per listener at most, whatever a (hostile) acceptor grants. */
const MAX_GRANTED = 8192;
/** A record the peer need not be woken for still wakes it once the control ring is this full. */
const LAZY_LIMIT = CONTROL_CAPACITY / 4;
/** Where the route sits in a channel's 256-byte control block (after magic, version, capacities). */
const ROUTE_AT = 16;
const MAX_ADDRESS = 45;

export class LinkError extends XwayError {
  constructor(message: string) {
    super('ERR_XWAY_LINK', message);
  }
}

/** A limit of ring memory per link: the connection that needs more uses TCP; the link stays. */
export class LinkLimitError extends LinkError {}

/** Pages of ring memory (chunk 0 aside: it is the link's own) a side may still add or map. */
export function roomPages(maxBytes: number, regionPages: number, chunk0Pages: number): number {
  return Math.floor(maxBytes / WASM_PAGE) - (regionPages - chunk0Pages);
}

/** One connection of a link, as ChannelEnd for the socket above. */
export class LinkChannelEnd extends ChannelEndBase {
  readonly platform: PlatformName;
  readonly peer: ChannelEnd['peer'];
  readonly slot: number;
  readonly generation: number;
  /** Where the channel is in the link's region: chunk, and byte offset in it. */
  readonly chunk: number;
  readonly chunkOffset: number;
  readonly #link: Link;
  #refd = true;
  /** The tx ring's tail at the last idle sweep, and whether its data pages were given back. */
  idleTail = -1;
  released = false;
  /** Initiator: connected without waiting for ACCEPT (its port came from a grant). */
  early = false;

  constructor(link: Link, slot: number, generation: number, channel: Channel, chunk: number, chunkOffset: number) {
    super(channel);
    this.#link = link;
    this.platform = link.platform.name;
    this.peer = link.platform.peer;
    this.slot = slot;
    this.generation = generation;
    this.chunk = chunk;
    this.chunkOffset = chunkOffset;
  }

  /** Where an observer can read this channel (the region's file and offset), if anywhere. */
  location(): { fd: number; fileOffset: number; ino?: number } | null {
    return this.#link.platform.locate?.(this.chunk, this.chunkOffset) ?? null;
  }

  /** The link's doorbell handler found this slot marked. */
  override wake(): void {
    super.wake();
  }

  /** Holds the link's wake-ups of the peer back until releasePeer() (one call each, in pairs). */
  holdPeer(): void {
    this.#link.hold();
  }

  releasePeer(): void {
    this.#link.release();
  }

  /** The link is gone: the peer's end is closed on its behalf (see ChannelEndBase) — or, when the
   *  peer's whole machine vanished (a destroyed Xen domain), nothing is closed (peerVanished). */
  linkLost(reason: string, vanished = false): void {
    if (vanished) this.peerVanished(reason);
    else this.peerLost(reason);
  }

  armWake(): void {
    // Nothing to arm: the peer marks this slot in our pending set and rings if we sleep.
  }

  override wrote(): void {
    if (this.released) {
      this.released = false;
      this.#link.sweepSoon();
    }
  }

  ref(): void {
    if (this.closed || this.#refd) return;
    this.#refd = true;
    this.#link.refs(+1);
  }

  unref(): void {
    if (this.closed || !this.#refd) return;
    this.#refd = false;
    this.#link.refs(-1);
  }

  get refd(): boolean {
    return this.#refd;
  }

  protected signalPeer(): void {
    this.#link.notifyPeer(this.slot);
  }

  protected release(): void {
    if (this.#refd) {
      this.#refd = false;
      this.#link.refs(-1);
    }
    this.channel.revoke();
    this.#link.endClosed(this);
  }
}

interface Free { offset: number; bytes: number }

/** The initiator's record of a slot it opened. */
interface InitiatorSlot {
  generation: number;
  chunk: number;
  offset: number;
  bytes: number;
  end: LinkChannelEnd;
  accepted: boolean;
  /** Connected at once, with a granted port: a refusal or the link's loss before ACCEPT is a reset. */
  early: boolean;
  /** The acceptor sent CLOSED (or REFUSE): it will not touch the slot again. */
  peerDone: boolean;
  answer?: { resolve: (port: number) => void; reject: (err: Error) => void };
}

export class Link {
  readonly side: LinkSide;
  readonly platform: LinkPlatform;
  /** Called (acceptor) for each OPEN that passed the link's checks. */
  onOpen: ((request: OpenRequest) => OpenDecision) | null = null;
  /** Called once when the link is closed (lost, failed, or idle and done). */
  onclose: (() => void) | null = null;

  readonly #words: Int32Array;
  /** The acceptor's listener table (see link-layout.ts). */
  readonly #listeners: Uint16Array;
  readonly #own: PendingSet;
  readonly #peer: PendingSet;
  readonly #ownDoorbell: number;
  readonly #peerDoorbell: number;
  readonly #control: Channel;
  /** Records waiting for room in the control ring. */
  readonly #outbox: Uint8Array[] = [];
  readonly #record = new DataView(new ArrayBuffer(RECORD_BYTES));
  /** Where #send encodes a record. */
  readonly #sending = new DataView(new ArrayBuffer(RECORD_BYTES));
  readonly #sendingBytes = new Uint8Array(this.#sending.buffer);
  /** Mapped chunks; null for one the acceptor would not map (past its limit). */
  readonly #chunks: (ChunkPlace | null)[] = [];
  /** Initiator: the acceptor's limit stopped growth (the first chunk it did not map), or -1. */
  #peerLimitAt = -1;
  /** Initiator: free space per chunk, sorted by offset. */
  readonly #free: Free[][] = [];
  /** Initiator: slots in use, and the free slot numbers; generations of every slot used. */
  readonly #slots = new Map<number, InitiatorSlot>();
  readonly #freeSlots: number[] = [];
  #nextSlot = 1;
  /** Acceptor: one past the highest slot an OPEN gave us (slot 0, the control channel, always). */
  #acceptedBound = 1;
  readonly #generations = new Map<number, number>();
  /** Initiator: ephemeral ports granted per listening port, for connections that need no ACCEPT. */
  readonly #grants = new Map<number, { epoch: number; maxCapacity: number; ports: number[] }>();
  /** Initiator: chunks the acceptor has shown it mapped (it accepted a connection in them). */
  readonly #confirmed: boolean[] = [true];
  /** Wake-ups of the peer held back (hold/release), and whether one is owed. */
  #held = 0;
  #owed = false;
  /** The peer waits on the control ring and a record was put there without waking it. */
  #controlUnrung = false;
  #serving = false;
  #reaper: NodeJS.Timeout | null = null;
  #reapDelay = REAP_MS;
  /** Acceptor: the open ends, by slot. */
  readonly #accepted = new Map<number, { end: LinkChannelEnd; release: () => void }>();
  #refs = 0;
  #draining = false;
  #closed = false;
  #lost: string | null = null;

  /** Chunk 0 is mapped at `platform.chunk0`; the initiator lays it out, the acceptor checks it. */
  constructor(side: LinkSide, platform: LinkPlatform) {
    this.side = side;
    this.platform = platform;
    const { memory, offset, bytes } = platform.chunk0;
    if (bytes < CHUNK0_BYTES) throw new LinkError(`chunk 0 has ${bytes} bytes, a link needs ${CHUNK0_BYTES}`);
    this.#words = new Int32Array(sharedBuffer(memory));
    this.#listeners = new Uint16Array(sharedBuffer(memory), offset + LINK.LISTENERS, 65536);
    const initiator = side === 'initiator';
    if (initiator) {
      initLinkHeader(this.#words, offset);
      this.#control = Channel.create(memory, offset + LINK.CONTROL, { capacityA: CONTROL_CAPACITY }, 'initiator');
    } else {
      const bad = checkLinkHeader(this.#words, offset);
      if (bad) throw new LinkError(`not a link: ${bad}`);
      this.#control = Channel.attach(memory, offset + LINK.CONTROL, { capacityA: CONTROL_CAPACITY }, 'acceptor');
    }
    this.#own = new PendingSet(this.#words, offset + (initiator ? LINK.PENDING_INITIATOR : LINK.PENDING_ACCEPTOR));
    this.#peer = new PendingSet(this.#words, offset + (initiator ? LINK.PENDING_ACCEPTOR : LINK.PENDING_INITIATOR));
    this.#ownDoorbell = (offset + (initiator ? LINK.DOORBELL_INITIATOR : LINK.DOORBELL_ACCEPTOR)) >>> 2;
    this.#peerDoorbell = (offset + (initiator ? LINK.DOORBELL_ACCEPTOR : LINK.DOORBELL_INITIATOR)) >>> 2;
    this.#chunks.push(platform.chunk0);
    this.#free.push([]); // chunk 0 holds the link itself
    // The first look at the control channel announces that we wait on it (the peer notifies a
    // consumer only once it said it waits); until then, slot 0 is marked for ourselves.
    this.#own.mark(0);
    setImmediate(() => this.doorbell());
    platform.unref(); // no connection yet
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connections open on this side. */
  get connections(): number {
    return this.side === 'initiator' ? this.#slots.size : this.#accepted.size;
  }

  // ---- the initiator's side ---------------------------------------------------------------------

  /**
   * Opens a connection to listening `port`: lays its channel out in a free slot and sends OPEN. The
   * end is usable at once for writing (accept overlaps the first data); `accepted` resolves with
   * the ephemeral port once the acceptor took it, or rejects when it refused.
   */
  open(port: number, capacityA: number, capacityB: number, route: Route): { end: LinkChannelEnd; accepted: Promise<number> | null } {
    if (this.side !== 'initiator') throw new LinkError('only the initiator opens connections');
    // The peer's death, if it happened, is known now (as a kernel knows its listener is gone at
    // SYN time), and what it wrote without waking us — CLOSED records, grants — is read: the
    // slots and memory they free are used instead of new ones.
    this.platform.checkAlive?.();
    if (!this.#closed) this.#catchUp();
    if (this.#closed) throw new LinkError(`the link is closed${this.#lost ? ` (${this.#lost})` : ''}`);
    const bytes = Math.ceil(channelByteLength(capacityA, capacityB) / 4096) * 4096;
    const slot = this.#freeSlots.pop() ?? (this.#nextSlot < MAX_SLOTS ? this.#nextSlot++ : 0);
    if (slot === 0) throw new LinkError(`all ${MAX_SLOTS - 1} slots of the link are in use`);
    let where: { chunk: number; offset: number };
    try {
      where = this.#allocate(bytes);
    } catch (err) {
      this.#freeSlots.push(slot);
      throw err;
    }
    const place = this.#chunks[where.chunk]!;
    const generation = ((this.#generations.get(slot) ?? 0) + 1) >>> 0;
    this.#generations.set(slot, generation);
    const channel = Channel.create(place.memory, place.offset + where.offset, { capacityA, capacityB }, 'initiator');
    writeRoute(place.memory, place.offset + where.offset, route);
    const end = this.#newEnd(slot, generation, channel, where.chunk, where.offset);
    const clientPort = this.#grantedPort(port, Math.max(capacityA, capacityB), where.chunk);
    end.connection = { port: clientPort, route }; // 0: the port comes with ACCEPT
    end.early = clientPort !== 0;
    const record: InitiatorSlot = { generation, chunk: where.chunk, offset: where.offset, bytes, end, accepted: false, early: end.early, peerDone: false };
    this.#slots.set(slot, record);
    this.#notIdle();
    this.refs(+1);
    this.sweepSoon();
    const accepted = end.early ? null : new Promise<number>((resolve, reject) => { record.answer = { resolve, reject }; });
    // An early OPEN wakes the acceptor only once the socket above has emitted 'connect' (its
    // writes then come in the same wake-up: see batch and flushOwed); a late one at once.
    this.#send({ op: Op.Open, slot, generation, chunk: where.chunk, offset: where.offset, capacityA, capacityB, port, clientPort }, end.early ? 'owed' : 'now');
    return { end, accepted };
  }

  #newEnd(slot: number, generation: number, channel: Channel, chunk: number, offset: number): LinkChannelEnd {
    return this.platform.createEnd?.(this, slot, generation, channel, chunk, offset) ?? new LinkChannelEnd(this, slot, generation, channel, chunk, offset);
  }

  /**
   * A port of the acceptor's grant for listening `port`, when this connection may be connected at
   * once — the listener is open (its epoch in the table is the grant's), the capacity is within
   * what it grants and the chunk is one the acceptor mapped, so nothing but the listener closing
   * meanwhile can make it refuse — or 0.
   */
  #grantedPort(port: number, capacity: number, chunk: number): number {
    const grant = this.#grants.get(port);
    if (!grant) return 0;
    if (grant.epoch !== Atomics.load(this.#listeners, port)) {
      this.#grants.delete(port); // that listener closed: its ports are void
      return 0;
    }
    if (capacity > grant.maxCapacity || !this.#confirmed[chunk] || grant.ports.length === 0) return 0;
    return grant.ports.shift()!;
  }

  /** Reads the control records the acceptor left without waking us. */
  #catchUp(): void {
    if (this.#serving) return;
    try {
      if (this.#control.rx.unread > 0) this.#serveControl();
    } catch (err) {
      this.fail(`link failed: ${(err as Error).message}`);
    }
  }

  /** Reads owed CLOSED records a while after a slot was left waiting for one. */
  #reapSoon(): void {
    if (this.#reaper || this.#closed) return;
    this.#reaper = setTimeout(() => {
      this.#reaper = null;
      this.#catchUp();
      const owed = [...this.#slots.values()].some((r) => r.end.closed && !r.peerDone);
      this.#reapDelay = owed ? Math.min(this.#reapDelay * 2, REAP_MAX_MS) : REAP_MS;
      if (owed) this.#reapSoon();
    }, this.#reapDelay);
    this.#reaper.unref();
  }

  /** First fit over the chunks; a new chunk (and a GROW) when none has room. */
  #allocate(bytes: number): { chunk: number; offset: number } {
    for (let c = 1; c < this.#free.length; c++) {
      const list = this.#free[c];
      const i = list.findIndex((f) => f.bytes >= bytes);
      if (i < 0) continue;
      const f = list[i];
      const offset = f.offset;
      if (f.bytes === bytes) list.splice(i, 1);
      else list[i] = { offset: f.offset + bytes, bytes: f.bytes - bytes };
      return { chunk: c, offset };
    }
    if (this.#peerLimitAt >= 0) throw new LinkLimitError("the link's ring memory would pass the server's limit for it");
    const index = this.#chunks.length;
    const need = Math.ceil(bytes / WASM_PAGE);
    const { place, pageOffset, pages } = this.platform.addChunk(index, Math.max(CHUNK_PAGES, need), need);
    this.#chunks.push(place);
    this.#confirmed.push(false);
    this.#free.push(place.bytes > bytes ? [{ offset: bytes, bytes: place.bytes - bytes }] : []);
    this.#send({ op: Op.Grow, chunk: index, pageOffset, pages }, 'lazy'); // the OPEN after it wakes the acceptor
    return { chunk: index, offset: 0 };
  }

  #releaseSpace(chunk: number, offset: number, bytes: number): void {
    if (this.#peerLimitAt >= 0 && chunk >= this.#peerLimitAt) return; // the acceptor refuses it
    const list = this.#free[chunk];
    const slot = { offset, bytes };
    let i = list.findIndex((f) => f.offset > offset);
    if (i < 0) i = list.length;
    list.splice(i, 0, slot);
    const right = list[i + 1];
    if (right && slot.offset + slot.bytes === right.offset) { slot.bytes += right.bytes; list.splice(i + 1, 1); }
    const left = list[i - 1];
    if (left && left.offset + left.bytes === slot.offset) { left.bytes += slot.bytes; list.splice(i, 1); }
  }

  /** Frees a slot once both sides are done with it; its generation moves on with the next use. */
  #maybeFree(slot: number, record: InitiatorSlot): void {
    if (!record.end.closed || !record.peerDone) return;
    this.#slots.delete(slot);
    this.#releaseSpace(record.chunk, record.offset, record.bytes);
    this.#freeSlots.push(slot);
    this.#idleCheck();
  }

  // ---- both sides -------------------------------------------------------------------------------

  /** A connection's end closed on this side (its channel already carries FIN or RST). */
  endClosed(end: LinkChannelEnd): void {
    if (this.side === 'initiator') {
      // The acceptor needs no CLOSED from us (our ring flags said it all); its CLOSED frees the slot.
      const record = this.#slots.get(end.slot);
      if (!record || record.end !== end) return;
      if (this.#closed) record.peerDone = true;
      this.#maybeFree(end.slot, record);
      if (!record.peerDone) this.#reapSoon();
    } else {
      const open = this.#accepted.get(end.slot);
      if (!open || open.end !== end) return;
      this.#accepted.delete(end.slot);
      open.release();
      // Not worth a wake-up: the initiator reads it at its next look (its next connect, at the latest).
      if (!this.#closed) this.#send({ op: Op.Closed, slot: end.slot, generation: end.generation }, 'lazy');
      this.#idleCheck();
    }
  }

  /** Marks `slot` in the peer's pending set, ringing its doorbell if it sleeps (or, while wake-ups
   *  are held, once they are released). */
  notifyPeer(slot: number): void {
    if (this.#closed) return;
    this.#peer.mark(slot);
    if (this.#held > 0) this.#owed = true;
    else this.#ringPeer();
  }

  #ringPeer(): void {
    if (Atomics.load(this.#words, this.#peerDoorbell) !== 0 && Atomics.exchange(this.#words, this.#peerDoorbell, 0) === 1) {
      this.platform.ring(this.#peerDoorbell);
    }
  }

  /** Holds wake-ups of the peer back until the matching release(): marks still go at once. */
  hold(): void {
    this.#held++;
  }

  release(): void {
    if (--this.#held > 0) return;
    this.flushOwed();
  }

  /** Rings the peer if a wake-up is owed (an early OPEN, or notifications made while held). */
  flushOwed(): void {
    if (this.#held > 0 || !this.#owed || this.#closed) return;
    this.#owed = false;
    this.#ringPeer();
  }

  /** The safety net of a connection opened at once: should the socket above not flush the OPEN it
   *  owes (after 'connect'), it goes two loop turns after the last such open — one pair of
   *  immediates per link, not per connection of a burst. */
  flushOwedLater(): void {
    if (this.#netPending) {
      this.#netAgain = true;
      return;
    }
    this.#netPending = true;
    setImmediate(this.#netTurn);
  }

  #netPending = false;
  #netAgain = false;
  #netTurn = (): void => void setImmediate(this.#netFire);
  #netFire = (): void => {
    this.#netPending = false;
    if (this.#netAgain) {
      this.#netAgain = false;
      return this.flushOwedLater(); // an open since: two turns from now, for it
    }
    this.flushOwed();
  };

  /** The platform's doorbell fired (or the platform polls): serve every marked slot. */
  doorbell(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    try {
      Atomics.store(this.#words, this.#ownDoorbell, 0); // awake: the peer need not ring
      for (let round = 0; round < DRAIN_ROUNDS && !this.#closed; round++) {
        let control = false;
        this.#own.drain((slot) => {
          if (slot === 0) control = true;
          else this.#endAt(slot)?.wake();
        }, this.#slotBound());
        if (control) this.#serveControl();
        if (this.#closed) return;
        // About to sleep: arm, then look once more (the mirror of the peer's mark-then-check).
        Atomics.store(this.#words, this.#ownDoorbell, 1);
        if (!this.#own.any(this.#slotBound())) break;
        Atomics.store(this.#words, this.#ownDoorbell, 0);
      }
      if (Atomics.load(this.#words, this.#ownDoorbell) === 0) {
        // Still busy after DRAIN_ROUNDS: let the event loop turn (to its next poll), then go on.
        // (A connection woken twice in one turn reads once: the socket keeps libuv's one read
        // event per poll itself, ring-socket.ts markShortRead.)
        this.#later(() => this.doorbell());
      }
    } catch (err) {
      this.fail(`link failed: ${(err as Error).message}`);
    } finally {
      this.#draining = false;
    }
    if (!this.#closed) this.platform.armDoorbell(this.#ownDoorbell);
  }

  /** One past the highest slot this side's connections ever had: the peer marks no other. */
  #slotBound(): number {
    return this.side === 'initiator' ? this.#nextSlot : this.#acceptedBound;
  }

  #later(fn: () => void): void {
    if (this.platform.atNextPoll) this.platform.atNextPoll(fn);
    else setImmediate(fn);
  }

  #endAt(slot: number): LinkChannelEnd | undefined {
    return this.side === 'initiator' ? this.#slots.get(slot)?.end : this.#accepted.get(slot)?.end;
  }

  /** Reads every record the peer sent, and sends what waited for room. */
  #serveControl(): void {
    this.#serving = true;
    try {
      this.#readControl();
    } finally {
      this.#serving = false;
    }
    this.#flushOutbox();
  }

  #readControl(): void {
    const rx = this.#control.rx;
    const bytes = new Uint8Array(this.#record.buffer);
    for (;;) {
      const n = rx.readInto(bytes);
      if (rx.peerNeedsWake) this.notifyPeer(0);
      if (n === 0) {
        if (rx.finished || rx.isReset) throw new LinkError('the peer ended the control channel');
        if (rx.prepareWaitData()) break; // the peer marks slot 0 when the next record comes
        continue;
      }
      if (n !== RECORD_BYTES) throw new LinkError(`a control record of ${n} bytes`);
      const message = decodeRecord(this.#record);
      if (!message) throw new LinkError(`unknown control record type ${this.#record.getUint8(0)}`);
      this.#handle(message);
      if (this.#closed) return;
    }
  }

  #handle(m: LinkMessage): void {
    if (this.side === 'acceptor') {
      if (m.op === Op.Grow) return this.#mapGrown(m.chunk, m.pageOffset, m.pages);
      if (m.op === Op.Open) return this.#accept(m);
      if (m.op === Op.Closed) return; // the ring's flags said it already; the slot is ours to forget when we close
      throw new LinkError(`record type ${m.op} is not for the acceptor`);
    }
    if (m.op === Op.Limit) return this.#peerLimit(m.chunk);
    if (m.op === Op.Ports) return this.#granted(m);
    if (m.op !== Op.Accept && m.op !== Op.Refuse && m.op !== Op.Closed) throw new LinkError(`record type ${m.op} is not for the initiator`);
    const record = this.#slots.get(m.slot);
    if (!record || record.generation !== m.generation) return; // stale: a slot already freed
    if (m.op === Op.Accept) {
      if (record.accepted) throw new LinkError(`slot ${m.slot} accepted twice`);
      if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) throw new LinkError(`ephemeral port ${m.port}`);
      if (record.early && m.port !== record.end.connection?.port) throw new LinkError(`slot ${m.slot} accepted with port ${m.port}, not the granted ${record.end.connection?.port}`);
      record.accepted = true;
      this.#confirmed[record.chunk] = true; // the acceptor maps the chunk: OPENs there may be early
      if (record.end.connection) record.end.connection.port = m.port;
      record.answer?.resolve(m.port);
      record.answer = undefined;
    } else if (m.op === Op.Refuse) {
      record.peerDone = true;
      record.answer?.reject(new LinkError(`the server refused the connection (${m.reason}: ${REFUSAL_TEXT[m.reason]})`));
      record.answer = undefined;
      if (record.early && !record.accepted) {
        // Connected already: a refusal now is what a listener's kernel does with a connection it
        // queued and then dropped (the listener closed before accepting it) — a reset.
        this.#resetEarly(record);
      } else if (!record.end.closed) {
        record.end.close();
      }
      this.#maybeFree(m.slot, record);
    } else {
      record.peerDone = true;
      this.#maybeFree(m.slot, record);
    }
  }

  /** Initiator: the acceptor grants ports of a listener for connections that need no ACCEPT. */
  #granted(m: Ports): void {
    if (m.listenPort < 1 || m.epoch < 1 || m.ports.length < 1 || m.maxCapacityLog2 > 31 || !isValidCapacity(2 ** m.maxCapacityLog2)) {
      throw new LinkError(`PORTS of listener ${m.listenPort}, epoch ${m.epoch}, ${m.ports.length} ports, capacity 2^${m.maxCapacityLog2}`);
    }
    if (m.ports.some((p) => p < 1)) throw new LinkError('PORTS with port 0');
    let grant = this.#grants.get(m.listenPort);
    if (!grant || grant.epoch !== m.epoch) {
      grant = { epoch: m.epoch, maxCapacity: 2 ** m.maxCapacityLog2, ports: [] };
      this.#grants.set(m.listenPort, grant);
    }
    grant.maxCapacity = 2 ** m.maxCapacityLog2;
    for (const p of m.ports) if (grant.ports.length < MAX_GRANTED) grant.ports.push(p);
  }

  /** An early connection that will not be accepted: reset, as a TCP peer's RST would do it. */
  #resetEarly(record: InitiatorSlot): void {
    if (record.end.closed) return;
    try {
      record.end.channel.abort();
    } catch { /* revoked */ }
    record.end.wake();
  }

  // ---- the acceptor's listener table and grants ---------------------------------------------------

  /** Initiator: whether the acceptor's thread has a listener open on `port` (its table says so). */
  listens(port: number): boolean {
    return !this.#closed && Atomics.load(this.#listeners, port) !== 0;
  }

  /** Acceptor: says in the shared table that listening `port` is open with `epoch` (or closed, 0). */
  setListener(port: number, epoch: number): void {
    if (this.side !== 'acceptor' || this.#closed) return;
    Atomics.store(this.#listeners, port, epoch);
  }

  /** Acceptor: grants the initiator `ports` for its next connections to listening `port` (epoch
   *  `epoch`, rings up to `maxCapacity`); sent without waking it — it reads them at its next look. */
  grant(port: number, epoch: number, maxCapacity: number, ports: number[]): void {
    if (this.side !== 'acceptor' || this.#closed) return;
    const maxCapacityLog2 = 31 - Math.clz32(maxCapacity);
    for (let i = 0; i < ports.length; i += PORTS_PER_RECORD) {
      this.#send({ op: Op.Ports, listenPort: port, epoch, maxCapacityLog2, ports: ports.slice(i, i + PORTS_PER_RECORD) }, 'lazy');
    }
  }

  /** Acceptor: maps a chunk the initiator added; chunks come in order. */
  #mapGrown(index: number, pageOffset: number, pages: number): void {
    if (index !== this.#chunks.length) throw new LinkError(`GROW of chunk ${index}, expected ${this.#chunks.length}`);
    if (pages < 1 || pages > 65536) throw new LinkError(`GROW of ${pages} pages`);
    if (this.#chunks.at(-1) === null) { // past our limit already: this one is not mapped either
      this.#chunks.push(null);
      return;
    }
    try {
      this.#chunks.push(this.platform.mapChunk(index, pageOffset, pages));
    } catch (err) {
      if (!(err instanceof LinkLimitError)) throw err;
      // Past our limit: OPENs in it are refused ('limit'), and the initiator grows no more.
      this.#chunks.push(null);
      this.#send({ op: Op.Limit, chunk: index });
    }
  }

  /** Initiator: the acceptor did not map chunk `index` and those after it. */
  #peerLimit(index: number): void {
    if (index < 1 || index >= this.#chunks.length) throw new LinkError(`LIMIT at chunk ${index} of ${this.#chunks.length}`);
    if (this.#peerLimitAt >= 0 && this.#peerLimitAt <= index) return;
    this.#peerLimitAt = index;
    for (let c = index; c < this.#free.length; c++) this.#free[c] = []; // OPENs there are refused
  }

  /** Acceptor: checks an OPEN against everything we know, then asks the listeners. */
  #accept(m: Open): void {
    const refuse = (reason: Refusal) => this.#send({ op: Op.Refuse, slot: m.slot, generation: m.generation, reason });
    if (m.clientPort > 65535) throw new LinkError(`OPEN with ephemeral port ${m.clientPort}`);
    if (m.slot < 1 || m.slot >= MAX_SLOTS) throw new LinkError(`OPEN of slot ${m.slot}`);
    if (this.#accepted.has(m.slot)) throw new LinkError(`OPEN of slot ${m.slot}, which is open`);
    const place = this.#chunks[m.chunk];
    if (m.chunk === 0 || place === undefined) throw new LinkError(`OPEN in chunk ${m.chunk} of ${this.#chunks.length}`);
    if (place === null) return refuse('limit');
    if (!isValidCapacity(m.capacityA) || !isValidCapacity(m.capacityB)) return refuse('malformed');
    const bytes = channelByteLength(m.capacityA, m.capacityB);
    // A channel must lie inside one chunk: chunks are not next to each other in our memory.
    if (m.offset % 64 !== 0 || m.offset + bytes > place.bytes) throw new LinkError(`OPEN at ${m.offset}+${bytes} outside chunk ${m.chunk} (${place.bytes} bytes)`);
    const route = readRoute(place.memory, place.offset + m.offset);
    if (!route) return refuse('malformed');
    const decision = this.onOpen?.({ port: m.port, clientPort: m.clientPort, capacityA: m.capacityA, capacityB: m.capacityB, route })
      ?? { refuse: 'not-listening' as const, why: 'no listener' };
    if ('refuse' in decision) return refuse(decision.refuse);
    if (Math.max(m.capacityA, m.capacityB) > decision.maxCapacity || (m.clientPort !== 0 && decision.port !== m.clientPort)) {
      decision.release();
      return refuse(m.clientPort !== 0 && decision.port !== m.clientPort ? 'malformed' : 'capacity');
    }
    let channel: Channel;
    try {
      channel = Channel.attach(place.memory, place.offset + m.offset, { capacityA: m.capacityA, capacityB: m.capacityB }, 'acceptor');
    } catch {
      decision.release();
      return refuse('malformed');
    }
    const end = this.#newEnd(m.slot, m.generation, channel, m.chunk, m.offset);
    const info: ConnectionInfo = { port: decision.port, route };
    end.connection = info;
    this.#accepted.set(m.slot, { end, release: decision.release });
    if (m.slot >= this.#acceptedBound) this.#acceptedBound = m.slot + 1;
    this.refs(+1);
    this.sweepSoon();
    // A client connected early does not wait for ACCEPT: it learns it at its next look.
    this.#send({ op: Op.Accept, slot: m.slot, generation: m.generation, port: decision.port }, m.clientPort !== 0 ? 'lazy' : 'now');
    decision.take(end);
  }

  /** Queues a record: `now` wakes the peer if it sleeps, `owed` when wake-ups are flushed
   *  (flushOwed), `lazy` not at all (it reads the record at its next look, unless the control
   *  ring fills up). */
  #send(m: LinkMessage, wake: 'now' | 'owed' | 'lazy' = 'now'): void {
    if (this.#closed) return;
    if (wake === 'owed') this.#owed = true;
    encodeRecord(m, this.#sending);
    // The common case, nothing queued and room in the ring: straight from the scratch record.
    if (this.#outbox.length === 0 && this.#write(this.#sendingBytes, wake)) return;
    this.#outbox.push(this.#sendingBytes.slice());
    this.#flushOutbox(wake);
  }

  #write(record: Uint8Array, wake: 'now' | 'owed' | 'lazy'): boolean {
    const tx = this.#control.tx;
    if (tx.reserve(RECORD_BYTES) < RECORD_BYTES) return false;
    tx.write(record);
    // The ring said the peer waits once, and a record we did not wake it for took that: the next
    // record that must wake it does, whatever the ring says then.
    if (tx.peerNeedsWake || this.#controlUnrung) {
      if (wake === 'now' || tx.unread >= LAZY_LIMIT) {
        this.#controlUnrung = false;
        this.notifyPeer(0);
      } else {
        this.#controlUnrung = true;
        this.#peer.mark(0); // seen at the peer's next drain
      }
    }
    return true;
  }

  /** Sends what the control ring has room for; for the rest, waits for room (the peer marks slot
   *  0 when it frees some). Records that waited for room wake the peer. */
  #flushOutbox(wake: 'now' | 'owed' | 'lazy' = 'now'): void {
    let first = true;
    while (this.#outbox.length > 0) {
      if (this.#write(this.#outbox[0], first && this.#outbox.length === 1 ? wake : 'now')) this.#outbox.shift();
      else if (this.#control.tx.prepareWaitSpace(RECORD_BYTES)) return;
      first = false;
    }
  }

  // ---- idle memory ------------------------------------------------------------------------------

  #sweeper: NodeJS.Timeout | null = null;

  /** Looks again, IDLE_RELEASE_MS from now, for rings of ours that went idle. */
  sweepSoon(): void {
    if (this.#sweeper || this.#closed || !this.platform.discard) return;
    this.#sweeper = setTimeout(() => {
      this.#sweeper = null;
      this.#sweep();
    }, IDLE_RELEASE_MS);
    this.#sweeper.unref();
  }

  /** Gives back the data pages of each ring we produce that is empty and was not written to since
   *  the last sweep. Only the producer does it, and only while the ring is empty: the consumer
   *  reads only between head and tail, so it never reads a page being given back. */
  #sweep(): void {
    let busy = false;
    for (const end of this.#ends()) {
      if (end.closed || end.released) continue;
      const tx = end.channel.tx;
      const stats = tx.stats();
      if (stats.tail !== end.idleTail || stats.used !== 0 || tx.staged !== 0) {
        end.idleTail = stats.tail;
        busy = true;
        continue;
      }
      // The ring's data area, in whole pages (its header and its neighbours' stay).
      const chunkOffset = this.#chunks[end.chunk]!.offset;
      const from = Math.ceil((tx.dataOffset - chunkOffset) / OS_PAGE) * OS_PAGE;
      const to = Math.floor((tx.dataOffset + tx.capacity - chunkOffset) / OS_PAGE) * OS_PAGE;
      if (to > from) {
        try {
          this.platform.discard!(end.chunk, from, to - from);
        } catch { /* the pages stay: nothing lost but memory */ }
      }
      end.released = true;
    }
    if (busy) this.sweepSoon();
  }

  /** Connections on this link ref'd (+1) or not (-1): the link holds the loop while any is. */
  refs(delta: number): void {
    const before = this.#refs;
    this.#refs += delta;
    if (this.#closed) return;
    if (before === 0 && this.#refs > 0) this.platform.ref();
    else if (before > 0 && this.#refs === 0) this.platform.unref();
  }

  /** With no connection left, an initiator closes the link after a short idle time; an acceptor
   *  keeps it until the initiator closes it. */
  #idleTimer: NodeJS.Timeout | null = null;
  #idleCheck(): void {
    if (this.side !== 'initiator' || this.#closed || this.#slots.size > 0 || this.#idleTimer) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#slots.size === 0) this.close();
    }, LINK_IDLE_MS);
    this.#idleTimer.unref();
  }

  /** A connection opened: the idle time, if it was running, starts again when the last one closes
   *  (a timer left running would close a link used all along but empty at the moment it fired). */
  #notIdle(): void {
    if (this.#idleTimer === null) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** The lifeline went (the peer died, or its link broke): every connection is closed on the
   *  peer's behalf, as its kernel would have; the link lets go of its pages once they are done.
   *  `how` 'vanished': the peer's machine is gone without closing anything (a destroyed Xen
   *  domain), so its connections time out instead (ChannelEndBase.peerVanished). */
  lost(reason: string, how: 'closed' | 'vanished' = 'closed'): void {
    if (this.#closed) return;
    // What the peer wrote before it went (ACCEPTs it did not wake us for) still counts.
    if (this.side === 'initiator') this.#catchUp();
    if (this.#closed) return;
    this.#lost = reason;
    // Connections it never accepted were in its listen queue: its kernel resets them (each end
    // is woken below, and reads the reset).
    for (const record of this.#slots.values()) {
      if (!record.early || record.accepted || record.end.closed) continue;
      try { record.end.channel.abort(); } catch { /* revoked */ }
    }
    this.#shutdown();
    for (const end of this.#ends()) end.linkLost(reason, how === 'vanished');
  }

  /** The peer broke the link's rules: its connections are reset and the link is closed. */
  fail(reason: string): void {
    if (this.#closed) return;
    this.#lost = reason;
    for (const end of this.#ends()) {
      try { end.channel.abort(); } catch { /* revoked already */ }
    }
    this.#shutdown();
    for (const end of this.#ends()) end.linkLost(reason);
  }

  /** Closes the link now (its connections, if any, see their peer gone). */
  close(): void {
    if (this.#closed) return;
    this.lost('the link was closed');
  }

  #ends(): LinkChannelEnd[] {
    return this.side === 'initiator' ? [...this.#slots.values()].map((s) => s.end) : [...this.#accepted.values()].map((a) => a.end);
  }

  #shutdown(): void {
    this.#closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#sweeper) clearTimeout(this.#sweeper);
    if (this.#reaper) clearTimeout(this.#reaper);
    for (const s of this.#slots.values()) {
      s.answer?.reject(new LinkError(`the link closed before the server answered (${this.#lost})`));
      s.answer = undefined;
      s.peerDone = true;
    }
    // Pages stay mapped while ends read what the peer left; the platform lets go when all closed.
    this.#releaseWhenDone();
  }

  #releaseWhenDone(): void {
    const open = this.#ends().filter((e) => !e.closed);
    if (open.length > 0) {
      let left = open.length;
      for (const end of open) {
        const onclose = end.onclose;
        end.onclose = () => {
          onclose?.();
          if (--left === 0) this.#release();
        };
      }
      return;
    }
    this.#release();
  }

  #release(): void {
    this.#slots.clear();
    for (const a of this.#accepted.values()) a.release();
    this.#accepted.clear();
    try {
      this.platform.close();
    } finally {
      const onclose = this.onclose;
      this.onclose = null;
      onclose?.();
    }
  }
}

/** How long an initiator keeps a link with no connection, for the next connect. */
export const LINK_IDLE_MS = Number(process.env.XWAY_LINK_IDLE_MS) || 2000;
/** A ring of ours left empty this long gives its data pages back. */
export const IDLE_RELEASE_MS = 1000;
const OS_PAGE = 4096;

/** The route in a channel's control block (set by the initiator, read by the acceptor). */
/** The encoding of the last route written ([target length, source length, target, source]):
 *  a client's connections mostly go the same way. */
let lastWritten: { route: Route; encoded: Uint8Array } | null = null;

function writeRoute(memory: WebAssembly.Memory, channelOffset: number, route: Route): void {
  if (lastWritten?.route.target !== route.target || lastWritten.route.source !== route.source) {
    const target = Buffer.from(route.target, 'latin1');
    const source = Buffer.from(route.source, 'latin1');
    const encoded = new Uint8Array(2 + target.length + source.length);
    encoded[0] = target.length;
    encoded[1] = source.length;
    encoded.set(target, 2);
    encoded.set(source, 2 + target.length);
    if (target.length > MAX_ADDRESS || source.length > MAX_ADDRESS || encoded.length > C_STAGE_A - ROUTE_AT) {
      throw new LinkError(`a route of ${route.target} from ${route.source} does not fit a channel header`);
    }
    lastWritten = { route: { ...route }, encoded };
  }
  wholeView(sharedBuffer(memory)).set(lastWritten.encoded, channelOffset + ROUTE_AT);
}

/** The last route read, as its bytes: most connections of a link come the same way, and parsing
 *  and checking two addresses costs more than comparing a few bytes. */
let lastRoute: { bytes: Uint8Array; route: Route } | null = null;

function readRoute(memory: WebAssembly.Memory, channelOffset: number): Route | null {
  const all = wholeView(sharedBuffer(memory));
  const at = channelOffset + ROUTE_AT;
  const tl = all[at], sl = all[at + 1];
  if (tl > MAX_ADDRESS || sl > MAX_ADDRESS) return null;
  const n = 2 + tl + sl;
  // The same bytes as last time, compared where they lie: the cached route was parsed from our
  // own copy, so a peer changing the block meanwhile changes nothing we use.
  if (lastRoute && lastRoute.bytes.length === n && sameBytes(all, at, lastRoute.bytes)) return { ...lastRoute.route };
  const raw = all.slice(at, at + n); // a copy: the peer may change the block meanwhile
  const route = parseRoute(raw, tl, sl);
  if (route) lastRoute = { bytes: raw, route: { ...route } };
  return route;
}

function sameBytes(all: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (all[at + i] !== bytes[i]) return false;
  return true;
}

function parseRoute(bytes: Uint8Array, tl: number, sl: number): Route | null {
  const text = (at: number, n: number) => Buffer.from(bytes.slice(at, at + n)).toString('latin1');
  const route = { target: text(2, tl), source: text(2 + tl, sl) };
  return net.isIP(route.target) && net.isIP(route.source) ? route : null;
}
