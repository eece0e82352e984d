import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { createClient } from 'redis';
import { ConfigError } from '../../../server/config.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { ROOT } from '../../ops/pm2-cluster.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

describe('GET /metrics', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('in production, a worker refuses to start without METRICS_TOKEN or METRICS_PUBLIC=true', async function () {
    let refused: unknown;
    await bed.startApp({ NODE_ENV: 'production' }).catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(ConfigError);
    expect(String((refused as Error).message)).to.match(/METRICS_TOKEN: required when NODE_ENV=production/);
    expect(String((refused as Error).message)).to.match(/METRICS_PUBLIC=true/);

    const withToken = await bed.startApp({ NODE_ENV: 'production', METRICS_TOKEN });
    expect((await fetch(`${withToken.url}/metrics`)).status).to.equal(401);
    const scrape = await fetch(`${withToken.url}/metrics`, {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(scrape.status).to.equal(200);

    const open = await bed.startApp({ NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
    expect((await fetch(`${open.url}/metrics`)).status).to.equal(200);
  });

  it('the real worker entry exits 1 with the message, before listening', async function () {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/pulseboard-worker.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', REDIS_URL: bed.redis.url, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A worker that starts anyway would run forever: stop it, so the test fails instead of hanging.
    const backstop = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(backstop);
    expect(code).to.equal(1);
    expect(stderr).to.match(/^pulseboard: invalid configuration:\n {2}- METRICS_TOKEN: required/);
    expect(stderr).to.not.match(/\n\s+at /); // a message, not a stack
  });

  it('concurrent scrapes of one worker share one gather', async function () {
    const scraped = await bed.startApp({ METRICS_TOKEN, METRICS_COLLECT_TIMEOUT_MS: '800' });
    // A registered worker that never answers holds each gather open for the whole collect timeout, so
    // the ten scrapes below surely overlap.
    const [seconds] = await bed.client.time();
    await bed.client.zAdd(`{${bed.prefix}}:workers`, { score: Number(seconds) * 1000, value: 'silent' });
    const listener: RedisClient = createClient({ url: bed.redis.url });
    await listener.connect();
    const collects: string[] = [];
    try {
      await listener.subscribe(`${bed.prefix}:metrics:collect`, (message) => collects.push(message));
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          fetch(`${scraped.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } }),
        ),
      );
      for (const answer of answers) expect(answer.status).to.equal(200);
      const bodies = await Promise.all(answers.map((answer) => answer.text()));
      for (const body of bodies) expect(body).to.match(/pulseboard_cluster_workers\{state="missing"\} 1/);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(collects).to.have.length(1);
    } finally {
      await listener.quit();
    }
  });
});
