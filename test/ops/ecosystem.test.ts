// ecosystem.config.cjs reads WEB_CONCURRENCY and SHUTDOWN_TIMEOUT_MS when PM2 loads it; each case loads it
// in a fresh node process with its own environment, as PM2 would.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { z } from 'zod';
import { ROOT } from './pm2-cluster.ts';

const run = promisify(execFile);
const appSchema = z.looseObject({
  exec_mode: z.string(),
  instances: z.union([z.number(), z.literal('max')]),
  wait_ready: z.boolean(),
  listen_timeout: z.number(),
  kill_timeout: z.number(),
  script: z.string(),
});

async function loadApp(env: Record<string, string>) {
  const { stdout } = await run(
    process.execPath,
    ['-e', 'process.stdout.write(JSON.stringify(require("./ecosystem.config.cjs").apps[0]))'],
    { cwd: ROOT, env: { PATH: process.env.PATH, ...env } },
  );
  return appSchema.parse(JSON.parse(stdout));
}

describe('ecosystem.config.cjs', function () {
  this.timeout(20_000);

  it('runs a cluster of WEB_CONCURRENCY workers that count as up only after process.send("ready")', async function () {
    const app = await loadApp({ WEB_CONCURRENCY: '3' });
    expect(app).to.include({ exec_mode: 'cluster', instances: 3, wait_ready: true });
    expect(path.resolve(ROOT, app.script)).to.equal(path.join(ROOT, 'bin', 'pulseboard-worker.js'));
  });

  it('uses one worker per core when WEB_CONCURRENCY is unset, empty or 0', async function () {
    const environments: Record<string, string>[] = [{}, { WEB_CONCURRENCY: '' }, { WEB_CONCURRENCY: '0' }];
    for (const env of environments) {
      expect((await loadApp(env)).instances).to.equal('max');
    }
  });

  it('refuses a WEB_CONCURRENCY that is not a whole number', async function () {
    const failure = await loadApp({ WEB_CONCURRENCY: 'lots' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failure)).to.include('WEB_CONCURRENCY must be a whole number');
  });

  it('gives the worker longer than its own drain deadline before PM2 sends SIGKILL', async function () {
    expect((await loadApp({})).kill_timeout).to.equal(5000);
    expect((await loadApp({ SHUTDOWN_TIMEOUT_MS: '8000' })).kill_timeout).to.equal(10_000);
  });
});
