// workerScript: the URL of one of ferry's worker modules when ferry runs built (dist/, .js). Under tsx (running
// the TypeScript directly) Node 20 cannot load a .ts worker, so callers get undefined and work in-thread.
export function workerScript(base: string, name: string): URL | undefined {
  return base.endsWith('.js') ? new URL(`./${name}.js`, base) : undefined;
}
