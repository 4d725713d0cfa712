/**
 * git-style progress on stderr, one line rewritten in place:
 *   Uploading gitml objects:  45% (9/20), 30.0 MiB | 12.5 MiB/s
 * Shown only when asked (a TTY, or git's `option progress true` in the remote helper), and only once
 * an operation has run for `delayMs`, so quick operations print nothing.
 */
export interface ProgressSink {
  write(text: string): void;
}

export interface ProgressOptions {
  enabled: boolean;
  delayMs?: number;
  now?: () => number;
}

export class Progress {
  private done = 0;
  /** Whether more items may still be announced with `expect` (the total is a count so far). */
  private growing = false;
  private bytes = 0;
  private lastRender = 0;
  private shown = false;
  private readonly started: number;
  private readonly now: () => number;
  private readonly delayMs: number;

  constructor(
    private readonly title: string,
    private total: number,
    private readonly sink: ProgressSink,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.delayMs = options.delayMs ?? 1000;
    this.started = this.now();
  }

  /**
   * Adds `n` items to the total, for work whose list is still being made (a push uploads while it
   * scans); until `allExpected`, the line shows the count so far rather than a percentage.
   */
  expect(n: number): void {
    this.total += n;
    this.growing = true;
  }

  allExpected(): void {
    this.growing = false;
  }

  addBytes(n: number): void {
    this.bytes += n;
    this.maybeRender();
  }

  itemDone(): void {
    this.done++;
    this.maybeRender();
  }

  /** Final line (only if progress was shown at all). */
  finish(): void {
    if (!this.options.enabled || !this.shown) return;
    this.sink.write(`\r${this.line()}, done.\n`);
  }

  line(): string {
    const pct = this.total === 0 ? 100 : Math.floor((this.done * 100) / this.total);
    const seconds = Math.max((this.now() - this.started) / 1000, 0.001);
    const rate = this.bytes / seconds;
    const count = this.growing ? `${this.done}/${this.total} so far` : `${String(pct).padStart(3)}% (${this.done}/${this.total})`;
    return `${this.title}: ${count}, ${formatBytes(this.bytes)} | ${formatBytes(rate)}/s`;
  }

  private maybeRender(): void {
    if (!this.options.enabled) return;
    const t = this.now();
    if (t - this.started < this.delayMs || t - this.lastRender < 100) return;
    this.lastRender = t;
    this.shown = true;
    this.sink.write(`\r${this.line()}`);
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

export const stderrSink: ProgressSink = { write: (t) => void process.stderr.write(t) };
