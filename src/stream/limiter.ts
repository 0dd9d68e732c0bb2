// Limiter: runs at most `limit` jobs at once, the rest waiting in order of priority (highest first, then first
// come). Every bounded fan-out in ferry goes through it: uploads, conversions, load requests, layer checks.
interface Waiting {
  priority: number;
  seq: number;
  start(): void;
}

export class Limiter {
  private running = 0;
  private seq = 0;
  private readonly waiting: Waiting[] = [];
  private stopped: { reason: unknown } | undefined;

  constructor(private limit: number) {
    if (!(limit >= 1)) throw new RangeError(`a limiter needs a limit of at least 1, not ${limit}`);
  }

  /** run waits for a slot, runs fn in it, and frees the slot however fn ends. */
  async run<T>(fn: () => Promise<T>, priority = 0): Promise<T> {
    await this.acquire(priority);
    try {
      if (this.stopped) throw this.stopped.reason;
      return await fn();
    } finally {
      this.release();
    }
  }

  /** setLimit changes how many may run; more start at once if it grew, running ones finish if it shrank. */
  setLimit(limit: number): void {
    this.limit = Math.max(1, limit);
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!.start();
    }
  }

  /** stop: nothing more starts; every job still waiting, and every one asked for later, fails with reason. */
  stop(reason: unknown = new Error('stopped')): void {
    this.stopped ??= { reason };
    for (const w of this.waiting.splice(0)) {
      this.running++;
      w.start();
    }
  }

  get active(): number {
    return this.running;
  }

  private async acquire(priority: number): Promise<void> {
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running++;
      return;
    }
    await new Promise<void>((start) => {
      const w = { priority, seq: this.seq++, start };
      // Kept sorted on insert: waiting lists are short (a push's blobs, a load's requests).
      const at = this.waiting.findIndex((x) => x.priority < priority);
      if (at < 0) this.waiting.push(w);
      else this.waiting.splice(at, 0, w);
    });
  }

  private release(): void {
    this.running--;
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!.start();
    }
  }
}
