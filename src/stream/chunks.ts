// chunksOf: a Readable's chunks as they arrive, for `for await`. Node's own iterator returns everything buffered
// as one new Buffer (a copy, then garbage); this hands over the chunks themselves and pauses the stream while the
// consumer is behind, so backpressure still reaches the producer.
import type { Readable } from 'node:stream';

export async function* chunksOf(r: Readable, maxQueued = 16): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failed: { err: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer): void => {
    queue.push(c);
    if (queue.length >= maxQueued) r.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (err: unknown): void => {
    failed = { err };
    notify();
  };
  r.on('data', onData);
  r.once('end', onEnd);
  r.once('error', onError);
  try {
    for (;;) {
      const c = queue.shift();
      if (c) {
        if (r.isPaused() && queue.length < maxQueued / 2) r.resume();
        yield c;
        continue;
      }
      if (failed) throw failed.err;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    r.off('data', onData);
    r.off('end', onEnd);
    r.off('error', onError);
    // The stream may still fail after its reader has gone (its request aborted on Ctrl-C): that is no crash.
    r.on('error', () => undefined);
    if (!ended) r.destroy();
  }
}
