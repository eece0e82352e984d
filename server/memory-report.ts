// Memory after a full garbage collection, for the bench only (docs/performance.md, "How it measures"):
// with BENCH_MEMORY_DIR set, SIGUSR2 makes the process collect garbage and write process.memoryUsage()
// to <dir>/<pid>.json. A signal comes only from the machine's own user (the bench); nothing a client
// sends can trigger it, and without the variable (production) no handler or gc() exists.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryReport {
  pid: number;
  /** Wall-clock ms of the report; 0 for the one written at start (the handler is installed). */
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

function write(dir: string, at: number): void {
  const file = join(dir, `${process.pid}.json`);
  const report: MemoryReport = { pid: process.pid, at, ...process.memoryUsage() };
  writeFileSync(`${file}.tmp`, JSON.stringify(report));
  renameSync(`${file}.tmp`, file);
}

/**
 * Bench only (`npm run bench -- --cpu-prof <dir>`): profiles the process's CPU from now until it exits and
 * writes the profile to `<dir>/<pid>.cpuprofile` (Node refuses --cpu-prof in NODE_OPTIONS, which is how
 * PM2's workers would get it). The main thread's inspector session answers synchronously, so the
 * profile is written even from the 'exit' event.
 */
function installCpuProfile(dir: string): void {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error === null)
        writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}

/**
 * Installs the SIGUSR2 handler when `dir` is set; writes a first report so the bench knows it may signal.
 * With BENCH_CPU_PROFILE_DIR also set, the process's CPU profile is written there when it exits.
 */
export function installMemoryReport(dir: string | undefined): void {
  if (dir === undefined || dir === '') return;
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  if (profileDir !== undefined && profileDir !== '') installCpuProfile(profileDir);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    // Twice: objects kept alive by finalizers or weak callbacks of the first pass go in the second.
    gc();
    gc();
    write(dir, Date.now());
  });
  write(dir, 0);
}
