// piped: an async iterable through a transform stream (gzip, gunzip). `.pipe()` alone leaves the source's errors
// unheard (an unhandled 'error' event ends the process); here they end the transform, and so its reader, instead.
import { Readable, type Transform } from 'node:stream';

export function piped<T extends Transform>(src: AsyncIterable<Buffer>, through: T): T {
  const from = Readable.from(src);
  from.on('error', (err) => through.destroy(err));
  return from.pipe(through);
}
