// ByteQueue: hands chunks from a producer to a consumer running at its own pace, holding at most a bounded
// number of bytes between them, so a slow consumer slows the producer instead of filling memory.
export class ByteQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private held = 0;
  private ended = false;
  private failed: unknown;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  /** push queues a chunk; it waits while more than `limit` bytes are queued. The chunk must not be reused. */
  async push(chunk: Buffer): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.wake();
    while (this.held > this.limit && this.failed === undefined) await new Promise<void>((r) => (this.wakeProducer = r));
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** fail ends the queue with an error: the consumer throws it, and so does the next push. */
  fail(err: unknown): void {
    this.failed = err;
    this.wake();
    this.wakeProducer?.();
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failed !== undefined) throw this.failed;
      const chunk = this.chunks.shift();
      if (chunk) {
        this.held -= chunk.length;
        if (this.held <= this.limit) {
          const w = this.wakeProducer;
          this.wakeProducer = undefined;
          w?.();
        }
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }
}
