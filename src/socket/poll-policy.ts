// When a ring socket cannot progress (nothing to read, no room to write), it may poll the ring for
// a short while before it sleeps. Sleeping means announcing the wait in the ring and being woken
// through the platform (between processes, an event-channel notification: a system call on each
// side and a process wake-up); a peer that answers within the poll window is met without either.
//
// Adaptive, after KVM's halt-polling: the budget grows to cover waits that turned out short and
// vanishes when polls expire unanswered; each expiry in a row doubles the number of sleeps before
// polling is tried again, so polling that cannot pay (no CPU left for the peer while we poll)
// fades out instead of costing every transaction. An idle peer costs one short poll, then nothing.

const POLL_MIN_MS = 0.01;
const POLL_MAX_MS = 0.2;
const POLL_START_MS = 0.05;
/** A gap this long between two polls means this process competes for a CPU (perhaps with its own
 *  peer): polling on would only delay the peer, so the socket sleeps instead. */
const POLL_STARVED_MS = 0.05;
/** At most 2^6 = 64 short sleeps between attempts to poll again. */
const POLL_MAX_MISSES = 6;

export class PollPolicy {
  #budget = POLL_START_MS;
  /** The current poll's deadline (0: not polling). */
  #deadline = 0;
  #lastCheck = 0;
  #misses = 0;
  /** Short sleeps still to pass before polling is tried again. */
  #pause = 0;
  #sleptAt = 0;

  get polling(): boolean {
    return this.#deadline !== 0;
  }

  /** Starts a poll window; false when this wait should sleep at once instead. */
  begin(): boolean {
    if (this.#budget === 0) return false;
    this.#lastCheck = 0; // the first turn may come late for our own work; later gaps say starved
    this.#deadline = performance.now() + this.#budget;
    return true;
  }

  /** The ring was ready at a check: the poll paid. */
  met(): void {
    this.#deadline = 0;
    this.#misses = 0;
  }

  /** The ring was not ready at a check: true to check again on the next turn, false when the
   *  window is over (the caller then sleeps). */
  again(): boolean {
    const now = performance.now();
    const starved = this.#lastCheck !== 0 && now - this.#lastCheck > POLL_STARVED_MS;
    this.#lastCheck = now;
    if (now < this.#deadline && !starved) return true;
    // Unanswered: stop polling for a while (longer after each miss in a row).
    this.#deadline = 0;
    this.#budget = 0;
    this.#misses = Math.min(this.#misses + 1, POLL_MAX_MISSES);
    this.#pause = 2 ** this.#misses;
    return false;
  }

  /** Abandons a poll window (the socket closed or has nothing left to wait for). */
  cancel(): void {
    this.#deadline = 0;
  }

  /** The socket goes to sleep now. */
  sleeping(): void {
    this.#sleptAt = performance.now();
  }

  /** The socket was woken. A short sleep says polling a little longer would have met the peer:
   *  grow the budget to what would have covered this wait (with a margin), not by a fixed step, so
   *  it cannot settle just short of a peer's steady answer time. */
  woken(): void {
    if (this.#sleptAt === 0) return;
    const slept = performance.now() - this.#sleptAt;
    this.#sleptAt = 0;
    if (slept >= POLL_MAX_MS) return;
    if (this.#pause > 0) this.#pause--;
    else this.#budget = Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, this.#budget * 2, slept * 1.5));
  }
}
