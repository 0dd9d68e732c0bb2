// startTracked: a private dockerd (test/helpers' startDockerd) whose stop, by its PID, also runs on failure or Ctrl-C.
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js';
import { defer } from './cleanup.js';

export async function startTracked(name: string): Promise<{ d: Dockerd; stop: () => Promise<void> }> {
  const d = await startDockerd(name);
  return { d, stop: defer(`dockerd ${name} (pid ${d.pid})`, () => d.stop()) };
}
