// cleanup: what the bench must undo (daemons it started, temp dirs), done once on success, failure or a signal.
type Undo = () => Promise<void>;

const pending = new Map<symbol, { what: string; undo: Undo }>();

/** defer registers an undo step; calling the returned function runs it now (once) and forgets it. */
export function defer(what: string, undo: Undo): () => Promise<void> {
  const key = Symbol(what);
  pending.set(key, { what, undo });
  return async () => {
    if (!pending.delete(key)) return;
    await undo();
  };
}

/** undoAll runs every pending step, newest first, reporting (not throwing) failures. */
export async function undoAll(): Promise<void> {
  for (const [key, { what, undo }] of [...pending.entries()].reverse()) {
    pending.delete(key);
    await undo().catch((err: unknown) => process.stderr.write(`bench: cleanup of ${what} failed: ${(err as Error).message}\n`));
  }
}

let stopping = false;

/** interrupted says whether a signal has started the cleanup (what fails after that is its consequence). */
export const interrupted = (): boolean => stopping;

/** onSignals makes Ctrl-C and SIGTERM clean up before exiting. */
export function onSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`bench: ${sig}, cleaning up\n`);
      void undoAll().finally(() => process.exit(130));
    });
  }
}
