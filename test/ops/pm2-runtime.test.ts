// `npm start` and the Docker image run `pm2-runtime ecosystem.config.cjs`: PM2 in the foreground, its
// cluster on one port, stopped gracefully when the container (or the terminal) sends SIGTERM/SIGINT.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { uniquePrefix } from '../helpers/app.ts';
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { ROOT } from './pm2-cluster.ts';
import { getOnNewConnection, sampleValue } from './prometheus-text.ts';

describe('pm2-runtime (npm start, Docker CMD)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let home: string;

  before(async function () {
    redis = await startTestRedis();
    home = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-pm2-runtime-'));
  });
  after(async function () {
    await redis.close();
    await rm(home, { recursive: true, force: true });
  });

  /**
   * Runs exactly what `npm start` runs after the client build (the build itself is left out here), with
   * `env` added over the script's own, until its 2 workers answer; then SIGTERM. Returns everything it printed.
   */
  async function runUntilUp(env: Record<string, string>): Promise<{ output: string; stopMs: number }> {
    const manifest = z
      .object({ scripts: z.object({ start: z.string() }) })
      .parse(JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')));
    const [build, command] = manifest.scripts.start.split(' && ');
    expect(build).to.equal('npm run build');
    // Leading NAME=value words are the environment the script sets.
    const words = command!.split(' ');
    const scriptEnv: Record<string, string> = {};
    while (/^[A-Z_]+=/.test(words[0] ?? '')) {
      const [name, value] = words.shift()!.split('=');
      scriptEnv[name!] = value!;
    }
    const [binary, ...args] = words;
    expect(binary).to.equal('pm2-runtime');
    const port = await freePort();
    const runtime = spawn(path.join(ROOT, 'node_modules/.bin/pm2-runtime'), args, {
      cwd: ROOT,
      env: {
        ...process.env,
        PM2_HOME: home,
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: redis.url,
        PULSEBOARD_PREFIX: uniquePrefix(),
        WEB_CONCURRENCY: '2',
        LOG_LEVEL: 'warn',
        // NODE_ENV=production (ecosystem.config.cjs): /metrics is scraped below without a token.
        METRICS_PUBLIC: 'true',
        ...scriptEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    runtime.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    runtime.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => runtime.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 30_000;
      let answered: number | undefined;
      while (answered !== 2) {
        if (Date.now() > deadline || runtime.exitCode !== null) throw new Error(`cluster not up:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
        const scrape = await getOnNewConnection(`${url}/metrics`).catch(() => undefined);
        answered = scrape && sampleValue(scrape.body, 'pulseboard_cluster_workers', { state: 'answered' });
      }
      const signalledAt = performance.now();
      runtime.kill('SIGTERM');
      const code = await exited;
      const stopMs = performance.now() - signalledAt;
      expect(code, output).to.equal(0);
      return { output, stopMs };
    } finally {
      if (runtime.exitCode === null && runtime.signalCode === null) {
        runtime.kill('SIGKILL');
        await exited;
      }
    }
  }

  const roundRobinWarning = /hands it to a worker \(round-robin\)/g;

  it('runs the cluster in the foreground and stops every worker gracefully on SIGTERM', async function () {
    const { output, stopMs } = await runUntilUp({});
    expect(output).to.match(/App \[pulseboard:0\] exited with code \[0\]/);
    expect(output).to.match(/App \[pulseboard:1\] exited with code \[0\]/);
    expect(output).not.to.match(/error: |TypeScript support unavailable/);
    // docs/deployment.md, "How workers get their connections": `npm start` lets the workers accept from
    // the socket they share (each would warn at start if PM2 handed them their connections).
    expect(output.match(roundRobinWarning), output).to.equal(null);
    console.log(`      pm2-runtime: 2 workers up; SIGTERM -> exit 0 after ${Math.round(stopMs)} ms`);
  });

  it('warns at start in every worker that PM2 hands its connections round-robin (NODE_CLUSTER_SCHED_POLICY=rr)', async function () {
    const { output } = await runUntilUp({ NODE_CLUSTER_SCHED_POLICY: 'rr' });
    expect(output.match(roundRobinWarning), output).to.have.length(2);
  });
});
