// Kills a test process's children when it dies, however it dies. Vitest ends its worker
// processes with a signal, which runs no 'exit' handler, and a process killed outright runs
// nothing at all; so a small detached process holds an IPC channel to this one and, when the
// channel closes, SIGKILLs the children it was told of that have not exited.
import { spawn, type ChildProcess } from 'node:child_process';

const REAPER = `
const pids = new Set();
process.on('message', (m) => {
  if (m.add) pids.add(m.add);
  if (m.remove) pids.delete(m.remove);
});
process.on('disconnect', () => {
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch {}
  }
  process.exit(0);
});
`;

let reaper: ChildProcess | undefined;

function theReaper(): ChildProcess {
  if (!reaper) {
    // Detached: a Ctrl-C to the test run's process group must not take the reaper first.
    reaper = spawn(process.execPath, ['-e', REAPER], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // Neither the reaper nor its channel keeps this process alive.
    reaper.unref();
    reaper.channel?.unref();
  }
  return reaper;
}

/** `child` is SIGKILLed if this process dies before it has exited. */
export function reapWithThisProcess(child: ChildProcess): void {
  const { pid } = child;
  if (pid === undefined) return;
  const watcher = theReaper();
  watcher.send({ add: pid });
  child.once('exit', () => {
    if (watcher.connected) watcher.send({ remove: pid });
  });
}
