// `npm run demo` is the README's first command: it must serve the dashboard with live simulated data and
// answer /healthz, and say clearly when Redis is missing.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { snapshotSchema } from '../../../shared/api.ts';
import { uniquePrefix } from '../../helpers/app.ts';
import { freePort, startTestRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { until } from '../../helpers/sse-client.ts';

const BIN = fileURLToPath(new URL('../../../bin/pulseboard.js', import.meta.url));

interface DemoProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function startDemo(env: Record<string, string>): DemoProcess {
  const child = spawn(process.execPath, [BIN, 'demo', '--interval', '200'], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('pulseboard demo', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let demo: DemoProcess | undefined;

  before(async function () {
    redis = await startTestRedis();
  });
  after(async function () {
    await redis.close();
  });
  afterEach(async function () {
    if (demo && demo.child.exitCode === null) {
      demo.child.kill('SIGKILL');
      await demo.exited;
    }
    demo = undefined;
  });

  it('serves the dashboard with simulated services, answers /healthz, prints how to log in, and stops on Ctrl-C', async function () {
    const port = await freePort();
    demo = startDemo({ REDIS_URL: redis.url, PORT: String(port), PULSEBOARD_PREFIX: uniquePrefix() });
    const running = demo;
    await until(() => /Log in as admin with password \S+/.test(running.output()), 30_000, 'the demo banner');
    const url = `http://127.0.0.1:${port}`;
    expect(running.output()).to.include(`pulseboard demo is running at http://localhost:${port}`);
    const password = /Log in as admin with password (\S+)/.exec(running.output())![1]!;

    const health = await fetch(`${url}/healthz`);
    expect(health.status).to.equal(200);
    const page = await fetch(`${url}/`, { redirect: 'manual' });
    expect(page.status).to.equal(302);
    const loginPage = await fetch(`${url}/login`);
    expect(loginPage.status).to.equal(200);
    expect(await loginPage.text()).to.include('<form');

    const login = await fetch(`${url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: url },
      body: JSON.stringify({ username: 'admin', password }),
    });
    expect(login.status).to.equal(200);
    const cookie = login.headers
      .getSetCookie()
      .map((header) => header.split(';')[0])
      .join('; ');
    // The simulator's first tick publishes every service's status and a batch of metrics.
    let snapshot = snapshotSchema.parse(
      await (await fetch(`${url}/api/snapshot`, { headers: { Cookie: cookie } })).json(),
    );
    const deadline = Date.now() + 10_000;
    while (snapshot.statuses.length < 8 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      snapshot = snapshotSchema.parse(
        await (await fetch(`${url}/api/snapshot`, { headers: { Cookie: cookie } })).json(),
      );
    }
    expect(snapshot.statuses.map((status) => status.service)).to.include.members([
      'api',
      'postgres',
      'billing',
    ]);
    expect(snapshot.metrics.map((series) => series.name)).to.include('api.latency');

    running.child.kill('SIGINT');
    expect(await running.exited).to.equal(0);
  });

  it('explains how to get Redis when REDIS_URL answers nothing, and exits 1', async function () {
    const deadPort = await freePort();
    demo = startDemo({ REDIS_URL: `redis://127.0.0.1:${deadPort}`, PORT: String(await freePort()) });
    expect(await demo.exited).to.equal(1);
    expect(demo.output()).to.include(`No Redis answered at REDIS_URL=redis://127.0.0.1:${deadPort}`);
    expect(demo.output()).to.include('apt-get install redis-server');
    expect(demo.output()).to.include('docker compose up -d redis');
  });
});
