/**
 * A hand-over between a producer that finds items one at a time and a consumer that works in
 * batches: each pull takes everything found since the last one, waiting only when nothing is there.
 * Nothing bounds it: the producer is never slowed (its items are held by the caller anyway).
 * When the consumer stops early (breaks out of its loop, or throws), later items are dropped.
 */
export class BatchChannel<T> {
  private pending: T[] = [];
  private closed = false;
  private abandoned = false;
  private wake: (() => void) | null = null;

  push(item: T): void {
    if (this.closed) throw new Error('BatchChannel: push after close');
    if (this.abandoned) return;
    this.pending.push(item);
    this.notify();
  }

  /** No more items: the consumer's loop ends once it has taken what is there. */
  close(): void {
    this.closed = true;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T[], void, undefined> {
    try {
      for (;;) {
        if (this.pending.length > 0) {
          const batch = this.pending;
          this.pending = [];
          yield batch;
        } else if (this.closed) return;
        else await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.abandoned = true;
      this.pending = [];
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
