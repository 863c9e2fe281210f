// When a ring socket cannot progress (nothing to read, no room to write), it may poll the ring for
// a short while before it sleeps. Sleeping means announcing the wait in the ring and being woken
// through the platform (between processes, an event-channel notification: a system call on each
// side and a process wake-up); a peer that answers within the poll window is met without either.
//
// The budget is what one wait may spend polling, and it is bounded by what it saves: a wake-up
// costs a few system calls and a loop turn on each side (POLL_MAX_MS of CPU, about), and a TCP
// connection pays as much on every exchange, so a ring connection that polls no longer than that
// costs no more CPU per exchange than the TCP connection it replaces — and a poll that meets the
// peer saves both the CPU and the wake-up latency. Between processes the addon polls and the
// budget is this thread's CPU time (ring-poller.ts): time handed to a peer on the same vCPU costs
// nothing. In JS (threads, no addon) it is wall time, scaled by JS_WALL_SCALE: each look there
// is a loop turn, and an Atomics wake-up is slow.
//
// Adaptive, after KVM's halt-polling: a wait the poll met late in its window, or a sleep so short
// that a longer poll would have met it, doubles the budget; a poll that expires halves it (never
// to zero at once: one late answer in a steady exchange must not stop polling for many exchanges).
// Only after several misses in a row does it reach POLL_MIN_MS, where the socket sleeps without
// polling until a short sleep says the peer answers quickly again. An idle peer costs a few short
// polls, then nothing.

const POLL_MIN_MS = 0.002;
const POLL_MAX_MS = 0.025;
const POLL_START_MS = 0.01;
/** JS polls (threads, no addon) measure wall time: 8 × the budget (16 µs to 200 µs). */
const JS_WALL_SCALE = 8;
/** A sleep shorter than this (wall time, wake-up included) grows the budget. */
const SHORT_SLEEP_MS = 0.1;
/** A gap this long between two JS polls means this process competes for a CPU (perhaps with its
 *  own peer): polling on would only delay the peer, so the socket sleeps instead. */
const POLL_STARVED_MS = 0.05;

export class PollPolicy {
  #budget = POLL_START_MS;
  #scale = 1;
  /** The current poll's start and deadline (0: not polling). */
  #startedAt = 0;
  #deadline = 0;
  #lastCheck = 0;
  /** The last poll expired: this wait sleeps. */
  #expired = false;
  #sleptAt = 0;

  get polling(): boolean {
    return this.#deadline !== 0;
  }

  /** What a poll begun now may spend, in ms (CPU time for a native poll, wall time in JS). */
  get budget(): number {
    return this.#budget * this.#scale;
  }

  /** Starts a poll window (`native`: the addon polls); false when this wait should sleep at once
   *  instead (right after a poll that expired: that is what the window was for). */
  begin(native: boolean): boolean {
    if (this.#expired) {
      this.#expired = false;
      return false;
    }
    // At the floor, polling has not paid for several waits in a row: sleep until a short sleep
    // (woken) says the peer answers quickly again. Even one look with a yield costs a time slice
    // when other programs hold the vCPU.
    if (this.#budget <= POLL_MIN_MS) return false;
    this.#scale = native ? 1 : JS_WALL_SCALE;
    this.#lastCheck = 0; // the first turn may come late for our own work; later gaps say starved
    // A native poll keeps its own clocks (and reports its cost); the clock is read only for JS's.
    this.#startedAt = native ? 1 : performance.now();
    this.#deadline = native ? 1 : this.#startedAt + this.budget;
    return true;
  }

  /** The ring was ready: the poll paid (`costMs`: what it cost, wall time if not given). One met
   *  late in its window doubles the budget, so that a steady answer time does not keep the window
   *  just short of it. */
  met(costMs = performance.now() - this.#startedAt): void {
    if (costMs > this.budget / 2) this.#budget = Math.min(POLL_MAX_MS, this.#budget * 2);
    this.#deadline = 0;
  }

  /** The ring was not ready at a JS check: true to check again on the next turn, false when the
   *  window is over (the caller then sleeps). */
  again(): boolean {
    const now = performance.now();
    const starved = this.#lastCheck !== 0 && now - this.#lastCheck > POLL_STARVED_MS;
    this.#lastCheck = now;
    if (now < this.#deadline && !starved) return true;
    this.expired();
    return false;
  }

  /** The window ran out unanswered (or the CPU is contended): halve the budget, sleep this time. */
  expired(): void {
    this.#deadline = 0;
    this.#budget = Math.max(POLL_MIN_MS, this.#budget / 2);
    this.#expired = true;
  }

  /** The poll was met, but only after this thread waited for its vCPU behind other programs:
   *  poll less (a sleeper is woken ahead of them, a poller waits its turn). */
  contended(): void {
    this.#deadline = 0;
    this.#budget = Math.max(POLL_MIN_MS, this.#budget / 2);
  }

  /** Abandons a poll window (the socket closed or has nothing left to wait for). */
  cancel(): void {
    this.#deadline = 0;
    this.#expired = false;
  }

  /** The socket goes to sleep now. */
  sleeping(): void {
    this.#sleptAt = performance.now();
  }

  /** The socket was woken. A short sleep says polling a little longer would have met the peer:
   *  double the budget. "Short" counts the wake-up itself (tens of µs on a VM), so it is measured
   *  against SHORT_SLEEP_MS, not against the budget: a producer whose consumer frees room every
   *  few µs but whose sleeps last a wake-up each must not stay at the smallest budget for good. */
  woken(): void {
    if (this.#sleptAt === 0) return;
    const slept = performance.now() - this.#sleptAt;
    this.#sleptAt = 0;
    if (slept < SHORT_SLEEP_MS) this.#budget = Math.min(POLL_MAX_MS, this.#budget * 2);
  }
}
