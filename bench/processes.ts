// Everything the bench starts is registered here and killed when the bench exits, however it exits:
// normal end, an error, Ctrl-C (SIGINT) or SIGTERM. Exit handlers must be synchronous, so the cleanup
// sends SIGKILL to child pids and runs `pm2 kill` with execFileSync.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const children = new Set<ChildProcess>();
const extraPids = new Set<number>();
const exitTasks = new Set<() => void>();
let installed = false;

function killEverything(): void {
  for (const task of exitTasks) {
    try {
      task();
    } catch {
      // best effort at exit
    }
  }
  for (const child of children) if (child.exitCode === null && child.pid) safeKill(child.pid);
  for (const pid of extraPids) safeKill(pid);
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping everything it started\n`);
      process.exit(130);
    });
  }
}

/** Spawns a child that is killed at exit if it is still running. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Remembers pids the bench did not spawn directly (cluster workers) to kill at exit. */
export function trackPids(pids: number[]): () => void {
  for (const pid of pids) extraPids.add(pid);
  return () => {
    for (const pid of pids) extraPids.delete(pid);
  };
}

/** Runs `task` synchronously at exit unless the returned function is called first. */
export function atExit(task: () => void): () => void {
  exitTasks.add(task);
  return () => exitTasks.delete(task);
}

/** Waits for a child's exit, SIGKILLing it after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs a command synchronously, ignoring failures (for cleanup). */
export function runQuietly(command: string, args: string[], env: NodeJS.ProcessEnv): void {
  try {
    execFileSync(command, args, { env, stdio: 'ignore', timeout: 20_000 });
  } catch {
    // best effort
  }
}

/** Registers a child started elsewhere (fork) to be killed at exit. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}
