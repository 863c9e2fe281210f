// A pending set: which connections of a link need the side that owns the set (their ring has data,
// space or a flag it waits for). The other side marks it; the owner drains it after a doorbell.
// Two levels, as Xen's event-channel pending bitmap: bit s of level 1 is slot s, bit w of level 0
// says level-1 word w may be non-zero, so a drain reads L0_WORDS words and then only the level-1
// words it must. Atomics on an Int32Array over the shared memory; everything read is a bit, so a
// peer scribbling here can only make us look at slots, each checked against our own table.

import { L0_WORDS, L1_WORDS, MAX_SLOTS } from './link-layout.js';

export class PendingSet {
  readonly #words: Int32Array;
  /** Word indices of level 0 and level 1. */
  readonly #l0: number;
  readonly #l1: number;

  /** The set at byte `offset` of the memory `words` views. */
  constructor(words: Int32Array, offset: number) {
    this.#words = words;
    this.#l0 = offset >>> 2;
    this.#l1 = this.#l0 + L0_WORDS;
  }

  /** Marks `slot`: level 1 first, so that a drainer that finds the level-0 bit finds the slot's. */
  mark(slot: number): void {
    Atomics.or(this.#words, this.#l1 + (slot >>> 5), 1 << (slot & 31));
    Atomics.or(this.#words, this.#l0 + (slot >>> 10), 1 << ((slot >>> 5) & 31));
  }

  /** Whether anything is marked among slots below `bound` (a look before sleeping). */
  any(bound = MAX_SLOTS): boolean {
    const words = l0Words(bound);
    for (let i = 0; i < words; i++) if (Atomics.load(this.#words, this.#l0 + i) !== 0) return true;
    return false;
  }

  /** Takes every marked slot (clearing it) and calls `visit` once for each. A slot marked again
   *  meanwhile stays marked for the next drain. Only the level-0 words of slots below `bound`
   *  (the slots the owner ever used) are read: a link of a few connections reads one word, not
   *  all 128. Marks above it (a peer's nonsense, as slots are ours to give) stay where they are. */
  drain(visit: (slot: number) => void, bound = MAX_SLOTS): void {
    const l0 = l0Words(bound);
    for (let i = 0; i < l0; i++) {
      if (Atomics.load(this.#words, this.#l0 + i) === 0) continue;
      let words = Atomics.exchange(this.#words, this.#l0 + i, 0);
      while (words !== 0) {
        const j = 31 - Math.clz32(words & -words);
        words &= words - 1;
        const w = i * 32 + j;
        if (w >= L1_WORDS) continue;
        let bits = Atomics.exchange(this.#words, this.#l1 + w, 0);
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          const slot = w * 32 + b;
          if (slot < MAX_SLOTS) visit(slot);
        }
      }
    }
  }
}

/** Level-0 words that cover slots [0, bound). */
function l0Words(bound: number): number {
  return Math.min(L0_WORDS, (Math.min(bound, MAX_SLOTS) + 1023) >>> 10);
}
