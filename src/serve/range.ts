// HTTP Range for blob downloads (RFC 9110): one range of bytes, so an interrupted pull resumes where it stopped.
// Several ranges in one request are answered whole (200), as the spec allows; a range past the end is unsatisfiable.

/** parseRange returns [start, end] (inclusive), undefined to send the whole blob, or 'unsatisfiable' (416). */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Not a single byte range (several, or another unit): ignored, the whole blob is sent.
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const [a, b] = [m[1]!, m[2]!];
  if (a.length > 15 || b.length > 15) return 'unsatisfiable';
  if (a === '') {
    // The last b bytes.
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}
