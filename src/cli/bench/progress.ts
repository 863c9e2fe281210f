// The progress line of `xway bench` on stderr: which data point runs, how many are done, the time
// spent and an estimate of the time left. On a terminal one line is redrawn in place (with a
// spinner, twice a second, so a long run visibly lives); otherwise a line per finished point.

const SPIN = ['|', '/', '-', '\\'];

export function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export class Progress {
  readonly #total: number;
  readonly #quiet: boolean;
  readonly #estimates: number[];
  readonly #tty: boolean;
  readonly #started = performance.now();
  #index = 0;
  #pointStarted = 0;
  #label = '';
  #last = '';
  #timer: NodeJS.Timeout | null = null;
  #spin = 0;

  constructor(total: number, quiet: boolean, _perPoint: number, estimates: number[]) {
    this.#total = total;
    this.#quiet = quiet;
    this.#estimates = estimates;
    this.#tty = !!process.stderr.isTTY;
  }

  #elapsed(): number {
    return (performance.now() - this.#started) / 1e3;
  }

  /** Seconds left: the planned time of what remains, scaled by how the plan has held so far.
   *  `finished`: the current point is done. */
  #left(finished = false): number {
    const done = finished ? this.#index : this.#index - 1;
    const planned = (from: number, to: number) => this.#estimates.slice(from, to).reduce((a, b) => a + b, 0);
    const inPoint = finished ? 0 : (performance.now() - this.#pointStarted) / 1e3;
    const plannedDone = planned(0, done);
    const elapsedDone = this.#elapsed() - inPoint;
    const scale = plannedDone > 0 && elapsedDone > 0 ? elapsedDone / plannedDone : 1;
    if (finished) return planned(done, this.#total) * scale;
    const current = Math.max(0, (this.#estimates[done] ?? 0) * scale - inPoint);
    return current + planned(done + 1, this.#total) * scale;
  }

  #line(): string {
    return `[${this.#index}/${this.#total}] ${this.#label}${this.#last ? `  (last: ${this.#last})` : ''}  ${clock(this.#elapsed())} elapsed, ~${clock(this.#left())} left`;
  }

  #draw(): void {
    const width = (process.stderr.columns || 100) - 1;
    let line = `${SPIN[this.#spin++ % SPIN.length]} ${this.#line()}`;
    if (line.length > width) line = line.slice(0, width - 1) + '…';
    process.stderr.write(`\r\x1b[K${line}`);
  }

  begin(label: string): void {
    this.#index++;
    this.#label = label;
    this.#pointStarted = performance.now();
    if (this.#quiet || !this.#tty) return;
    this.#draw();
    this.#timer ??= setInterval(() => this.#draw(), 500);
    this.#timer.unref();
  }

  end(label: string, text: string): void {
    if (this.#quiet) return;
    if (this.#tty) {
      this.#last = `${label}: ${text}`;
      if (text.startsWith('FAILED')) process.stderr.write(`\r\x1b[K[${this.#index}/${this.#total}] ${label}: ${text}\n`);
      this.#draw();
      return;
    }
    const left = this.#index < this.#total ? `, ~${clock(this.#left(true))} left` : '';
    process.stderr.write(`[${this.#index}/${this.#total}] ${label}: ${text}  (${clock(this.#elapsed())} elapsed${left})\n`);
  }

  clear(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (!this.#quiet && this.#tty) process.stderr.write('\r\x1b[K');
  }
}
