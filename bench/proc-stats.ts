// Server cost from /proc: CPU time (utime + stime, fields 14 and 15 of /proc/<pid>/stat, in clock
// ticks of 10 ms) and resident memory (VmRSS) of a set of processes.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MemoryReport } from '../server/memory-report.ts';

const TICK_MICROS = 10_000;

/** Summed utime + stime of the processes, in µs (a process that has exited counts 0). */
export async function cpuMicros(pids: readonly number[]): Promise<number> {
  const { user, system } = await cpuTimes(pids);
  return user + system;
}

/** Summed utime (user) and stime (system: the kernel, on the processes' behalf) of the processes, in µs. */
export async function cpuTimes(pids: readonly number[]): Promise<{ user: number; system: number }> {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      user += Number(fields[11]);
      system += Number(fields[12]);
    } catch {
      // exited
    }
  }
  return { user: user * TICK_MICROS, system: system * TICK_MICROS };
}

/** Summed VmRSS of the processes, in KiB. */
export async function rssKiB(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return total;
}

/** Summed memory of the processes right after a forced full GC, in KiB. */
export interface MemoryAfterGc {
  heapUsedKiB: number;
  rssKiB: number;
}

async function readReport(dir: string, pid: number): Promise<MemoryReport | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `${pid}.json`), 'utf8')) as MemoryReport;
  } catch {
    return undefined;
  }
}

/**
 * Sends SIGUSR2 to every process that installed the report handler (server/memory-report.ts: it wrote
 * a first report at start), waits for each to collect garbage and write its memory, and sums them.
 * Undefined when a process has no handler or does not answer within `timeoutMs`: the bench then reports
 * no after-GC figure rather than a wrong one (and never signals a process without the handler).
 */
export async function memoryAfterGc(
  dir: string,
  pids: readonly number[],
  timeoutMs = 15_000,
): Promise<MemoryAfterGc | undefined> {
  for (const pid of pids) if ((await readReport(dir, pid)) === undefined) return undefined;
  const asked = Date.now();
  for (const pid of pids) {
    await rm(join(dir, `${pid}.json`), { force: true });
    process.kill(pid, 'SIGUSR2');
  }
  const total: MemoryAfterGc = { heapUsedKiB: 0, rssKiB: 0 };
  const deadline = Date.now() + timeoutMs;
  for (const pid of pids) {
    let report = await readReport(dir, pid);
    while (report === undefined || report.at < asked) {
      if (Date.now() > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 50));
      report = await readReport(dir, pid);
    }
    total.heapUsedKiB += report.heapUsed / 1024;
    total.rssKiB += report.rss / 1024;
  }
  return total;
}
