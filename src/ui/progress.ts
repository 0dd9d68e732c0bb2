// Progress for people: listr2 tasks on a TTY, plain lines on a pipe, nothing but errors with --quiet.

export interface StepContext {
  /** update replaces the step's detail line: a passing state (throttled to a line every few seconds on plain output). */
  update(text: string): void;
  /** log is a line worth keeping (a layer done): every one is printed on plain output; on a TTY it is the detail line. */
  log(text: string): void;
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
          // The detail line is redrawn at most every 100 ms: updates may come with every chunk that passes.
          let shown = 0;
          const update = (text: string): void => {
            const now = Date.now();
            if (now - shown < 100) return;
            shown = now;
            task.output = text;
          };
          await s.run({ update, log: (text) => void (task.output = text) });
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
        if (mode === 'plain' && now - last > PLAIN_EVERY_MS) {
          last = now;
          process.stderr.write(`  ${text}\n`);
        }
      },
      log: (text) => {
        if (mode !== 'plain') return;
        last = Date.now();
        process.stderr.write(`  ${text}\n`);
      },
    });
  }
}

/** A passing state is printed on plain output at most this often (CI logs stay readable; a stall still shows). */
const PLAIN_EVERY_MS = 2000;

/** Meter: bytes done of a total that may grow as work is planned, the rate so far and an estimate of what is left. */
export class Meter {
  private done = 0;
  private total = 0;
  private readonly started = Date.now();

  /** plan adds bytes to the total (negative: bytes that will not flow after all, found at the target). */
  plan(bytes: number): void {
    this.total = Math.max(0, this.total + bytes);
  }

  add(bytes: number): void {
    this.done += bytes;
  }

  get bytes(): number {
    return this.done;
  }

  /** text: "48.2 MB of 120 MB (40%), 35.1 MB/s, about 2 s left". */
  text(): string {
    const secs = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = this.done / secs;
    const total = Math.max(this.total, this.done);
    const of = total > 0 ? ` of ${formatBytes(total)} (${Math.floor((this.done * 100) / total)}%)` : '';
    const left = rate > 0 && total > this.done ? `, about ${formatSeconds((total - this.done) / rate)} left` : '';
    return `${formatBytes(this.done)}${of}, ${formatBytes(rate)}/s${left}`;
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
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
