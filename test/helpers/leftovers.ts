// What a test started and may have left running: a listener on a loopback port, a child process. For the
// tests of cleanup after a failed start (docs/design.md, "Tests"), checked while the test process still
// runs (at its exit, redis-server and Chromium are killed anyway).
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** Whether anything accepts connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Pids of this process's children still running (Linux /proc; redis-server and Chromium are children). */
export function childPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so read from its last `)`.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(ppid) === process.pid && state !== 'Z' ? [Number(pid)] : [];
      } catch {
        return []; // ended while being read
      }
    });
}
