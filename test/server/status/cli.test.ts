// `pulseboard board public` (the real CLI): turns a board's status page on with its services and embed
// origins, shows the settings, refuses bad input writing nothing, turns it off, and tells the workers.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { BoardStore } from '../../../server/auth/boards.ts';
import { controlMessageSchema, type ControlMessage } from '../../../server/bus/control.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { sleep } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('pulseboard board public (the real CLI)', function () {
  this.timeout(60_000);
  const bed = useTestBed();

  function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['bin/pulseboard.js', ...args], {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix, LOG_LEVEL: 'silent' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end();
    });
  }

  it('turns a page on and off, shows it, refuses bad input, and publishes public-changed', async function () {
    const names = redisNames(bed.prefix);
    await new BoardStore(bed.client, names).add('shop');
    const control: ControlMessage[] = [];
    const subscriber = bed.client.duplicate();
    await subscriber.connect();
    try {
      await subscriber.subscribe(names.controlChannel, (raw) =>
        control.push(controlMessageSchema.parse(JSON.parse(raw))),
      );
      const key = boardKeys(bed.prefix, 'shop').publicStatus;

      const on = await cli(
        'board',
        'public',
        'shop',
        'on',
        '--service',
        'api',
        '--service',
        'web',
        '--embed-origin',
        'https://example.com',
      );
      expect(on.stderr).to.equal('');
      expect(on.code).to.equal(0);
      expect(on.stdout).to.include('board shop: public status page on at /status/shop');
      expect(on.stdout).to.include('services: api, web');
      expect(on.stdout).to.include('framed by https://example.com');
      const stored = JSON.parse((await bed.client.get(key)) ?? '{}') as Record<string, unknown>;
      expect(stored).to.include.keys('services', 'embedOrigins', 'updatedAt');
      expect(stored.services).to.deep.equal(['api', 'web']);

      const shown = await cli('board', 'public', 'shop');
      expect(shown.code).to.equal(0);
      expect(shown.stdout).to.include('services: api, web');

      for (const args of [
        ['board', 'public', 'shop', 'on', '--embed-origin', 'https://example.com/path'],
        ['board', 'public', 'shop', 'on', '--service', 'bad name'],
        ['board', 'public', 'nope', 'on', '--service', 'api'],
        ['board', 'public', 'shop', 'maybe'],
        ['board', 'public', 'shop', 'off', '--service', 'api'],
      ]) {
        const refused = await cli(...args);
        expect(refused.code, args.join(' ')).to.equal(1);
        expect(refused.stderr, args.join(' ')).to.match(/\S/);
      }
      expect(
        (JSON.parse((await bed.client.get(key)) ?? '{}') as { services: string[] }).services,
      ).to.deep.equal(['api', 'web']);

      const off = await cli('board', 'public', 'shop', 'off');
      expect(off.code).to.equal(0);
      expect(off.stdout).to.equal('turned off the public status page of shop\n');
      expect(await bed.client.exists(key)).to.equal(0);
      expect((await cli('board', 'public', 'shop')).stdout).to.equal('board shop: public status page off\n');
      await sleep(100);
      expect(control).to.deep.equal([
        { type: 'public-changed', board: 'shop' },
        { type: 'public-changed', board: 'shop' },
      ]);
    } finally {
      await subscriber.quit();
    }
  });
});
