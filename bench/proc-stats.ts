// Server cost from /proc: CPU time (utime + stime, fields 14 and 15 of /proc/<pid>/stat, in clock
// ticks of 10 ms) and resident memory (VmRSS) of a set of processes.
import { readFile } from 'node:fs/promises';

const TICK_MICROS = 10_000;

/** Summed utime + stime of the processes, in µs (a process that has exited counts 0). */
export async function cpuMicros(pids: readonly number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks * TICK_MICROS;
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
