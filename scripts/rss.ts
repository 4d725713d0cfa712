import fs from 'node:fs';

/**
 * Watches every live process whose command line contains `marker` (our binaries, started by git) and
 * records the peak resident memory each reached (VmHWM from /proc, Linux only).
 */
export class RssWatcher {
  readonly peaks = new Map<number, { cmd: string; kib: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly marker: string) {}

  start(intervalMs = 20): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }

  /** The highest peak among the watched processes whose command line contains `filter`, in MiB. */
  maxMiB(filter = ''): number {
    let max = 0;
    for (const p of this.peaks.values()) if (p.cmd.includes(filter)) max = Math.max(max, p.kib);
    return max / 1024;
  }

  private sample(): void {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (!cmd.includes(this.marker)) continue;
        const status = fs.readFileSync(`/proc/${name}/status`, 'utf8');
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (!m) continue;
        const pid = Number(name);
        const kib = Number(m[1]);
        const prev = this.peaks.get(pid);
        if (!prev || prev.kib < kib) this.peaks.set(pid, { cmd, kib });
      } catch {
        // The process ended between readdir and read.
      }
    }
  }
}
