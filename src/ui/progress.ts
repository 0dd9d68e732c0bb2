// Progress for people: listr2 tasks on a TTY, plain lines on a pipe, nothing but errors with --quiet.

export interface StepContext {
  /** update replaces the step's detail line (throttled on plain output). */
  update(text: string): void;
}

export interface Step {
  title: string;
  run(ctx: StepContext): Promise<void>;
}

export type ProgressMode = 'tty' | 'plain' | 'quiet';

export function progressMode(opts: { quiet?: boolean; json?: boolean }): ProgressMode {
  if (opts.quiet) return 'quiet';
  return process.stderr.isTTY && !process.env.CI ? 'tty' : 'plain';
}

/** runSteps runs steps in order; the first failure stops the rest and is rethrown as is. */
export async function runSteps(steps: readonly Step[], mode: ProgressMode): Promise<void> {
  if (mode === 'tty') {
    // Loaded only for a terminal: pipes and CI never pay for it.
    const { Listr } = await import('listr2');
    const list = new Listr(
      steps.map((s) => ({
        title: s.title,
        task: async (_: unknown, task: { output: string }) => {
          await s.run({ update: (text) => void (task.output = text) });
        },
        rendererOptions: { outputBar: 1, persistentOutput: false },
      })),
      { concurrent: false, exitOnError: true, renderer: 'default', rendererOptions: { collapseErrors: false }, registerSignalListeners: false, collectErrors: false },
    );
    await list.run();
    return;
  }
  for (const s of steps) {
    if (mode === 'plain') process.stderr.write(`${s.title}\n`);
    let last = 0;
    await s.run({
      update: (text) => {
        const now = Date.now();
        if (mode === 'plain' && now - last > 2000) {
          last = now;
          process.stderr.write(`  ${text}\n`);
        }
      },
    });
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
