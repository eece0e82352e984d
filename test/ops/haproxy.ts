// Runs Debian's HAProxy in the foreground with the repo's deploy/haproxy.cfg (the same file compose uses),
// its addresses given through the environment as the config expects.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/redis-server.ts';
import { ROOT } from './pm2-cluster.ts';

/** Debian's HAProxy unless HAPROXY_PATH names another (bin/preflight.js checks the same). */
export const HAPROXY_BIN = process.env.HAPROXY_PATH ?? '/usr/sbin/haproxy';
export const HAPROXY_CONFIG = path.join(ROOT, 'deploy/haproxy.cfg');

export interface Balancer {
  url: string;
  /** HAProxy's process id (the flood suite may raise its CPU priority, with the worker's). */
  pid: number | undefined;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts HAProxy in front of `host1` and `host2` (host:port); resolves once it accepts connections. `env`
 * sets the config's other variables (LB_MAX_CONN_PER_IP, …).
 */
export async function startHaproxy(
  host1: string,
  host2: string,
  env: Record<string, string> = {},
): Promise<Balancer> {
  if (!existsSync(HAPROXY_BIN)) throw new Error(`${HAPROXY_BIN} missing: apt-get install haproxy`);
  const port = await freePort();
  const child: ChildProcess = spawn(HAPROXY_BIN, ['-f', HAPROXY_CONFIG, '-db'], {
    env: {
      PATH: process.env.PATH,
      LB_BIND: `127.0.0.1:${port}`,
      PULSEBOARD_HOST_1: host1,
      PULSEBOARD_HOST_2: host2,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${output}`);
    try {
      await fetch(`${url}/livez`, { signal: AbortSignal.timeout(1000) }).then((response) =>
        response.body?.cancel(),
      );
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${url}:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    pid: child.pid,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
