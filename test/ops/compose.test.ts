// docker-compose.yml, docker-compose.sentinel.yml, docker-compose.cluster.yml and deploy/haproxy.cfg are validated by the real tools (no Docker engine needed):
// Debian's docker-compose and haproxy. Skips, saying why, only when a tool is not installed.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { HAPROXY_BIN, HAPROXY_CONFIG } from './haproxy.ts';
import { ROOT } from './pm2-cluster.ts';

const run = promisify(execFile);
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

async function compose(args: string[], file = COMPOSE_FILE): Promise<string> {
  const { stdout } = await run('docker-compose', ['-f', file, ...args], {
    cwd: ROOT,
    // Interpolation must work with nothing set: every ${VAR} in the file has a default.
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  return stdout;
}

describe('deployment files', function () {
  this.timeout(60_000);

  describe('docker-compose.yml', function () {
    before(async function () {
      try {
        await run('docker-compose', ['version']);
      } catch {
        console.log('      skipped: docker-compose is not installed (apt-get install docker-compose)');
        this.skip();
      }
    });

    it('passes `docker-compose config -q`', async function () {
      expect(await compose(['config', '-q'])).to.equal('');
    });

    it('runs Redis with persistence and a healthcheck, two app hosts after it, and HAProxy on 8080 with the repo config', async function () {
      expect((await compose(['config', '--services'])).trim().split('\n').sort()).to.deep.equal([
        'lb',
        'pulseboard-1',
        'pulseboard-2',
        'redis',
      ]);
      expect((await compose(['config', '--volumes'])).trim()).to.equal('redis-data');
      const resolved = await compose(['config']);
      expect(resolved).to.include('--appendonly');
      expect(resolved).to.include('redis-cli');
      expect(resolved).to.include('condition: service_healthy');
      expect(resolved).to.include(
        `${path.join(ROOT, 'deploy/haproxy.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`,
      );
      expect(resolved).to.match(/published: 8080\s+target: 8080/);
      expect(resolved).to.include('PULSEBOARD_HOST_1: pulseboard-1:3000');
      expect(resolved).to.include('REDIS_URL: redis://redis:6379');
    });
  });

  // The scale-out topologies (docs/scaling.md): the same two hosts and balancer on Sentinel or Cluster.
  for (const { file, redis, env } of [
    {
      file: 'docker-compose.sentinel.yml',
      redis: ['redis-primary', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3'],
      env: [
        'REDIS_SENTINELS: sentinel-1:26379,sentinel-2:26379,sentinel-3:26379',
        'REDIS_SENTINEL_NAME: pulseboard',
      ],
    },
    {
      file: 'docker-compose.cluster.yml',
      redis: ['cluster-init', 'redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6'],
      env: [
        'REDIS_CLUSTER_NODES: redis-1:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379,redis-6:6379',
      ],
    },
  ]) {
    describe(file, function () {
      const full = path.join(ROOT, file);
      before(async function () {
        try {
          await run('docker-compose', ['version']);
        } catch {
          console.log('      skipped: docker-compose is not installed (apt-get install docker-compose)');
          this.skip();
        }
      });

      it('passes `docker-compose config -q`', async function () {
        expect(await compose(['config', '-q'], full)).to.equal('');
      });

      it('runs the Redis topology, two app hosts pointed at it (no REDIS_URL) and HAProxy on 8080', async function () {
        const services = (await compose(['config', '--services'], full)).trim().split('\n').sort();
        expect(services).to.deep.equal([...redis, 'lb', 'pulseboard-1', 'pulseboard-2'].sort());
        const resolved = await compose(['config'], full);
        for (const line of env) expect(resolved).to.include(line);
        // One topology only: the config refuses REDIS_URL beside the sentinel or cluster variables.
        expect(resolved).to.not.include('REDIS_URL');
        expect(resolved).to.include('REDIS_WAIT_REPLICAS: auto');
        expect(resolved).to.include('--appendonly');
        expect(resolved).to.include(
          `${path.join(ROOT, 'deploy/haproxy.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`,
        );
        expect(resolved).to.match(/published: 8080\s+target: 8080/);
        if (file.includes('cluster')) {
          expect(resolved).to.include('--cluster-replicas 1');
          expect(resolved).to.include('condition: service_completed_successfully');
        } else {
          expect(resolved).to.include('sentinel monitor pulseboard redis-primary 6379 2');
        }
      });
    });
  }

  describe('deploy/haproxy.cfg', function () {
    before(function () {
      if (!existsSync(HAPROXY_BIN)) {
        console.log(`      skipped: ${HAPROXY_BIN} is not installed (apt-get install haproxy)`);
        this.skip();
      }
    });

    it('is valid for `haproxy -c`, with its defaults and with the addresses the tests give it', async function () {
      for (const env of [
        {},
        { LB_BIND: '127.0.0.1:18080', PULSEBOARD_HOST_1: '127.0.0.1:1', PULSEBOARD_HOST_2: '127.0.0.1:2' },
      ]) {
        const { stdout } = await run(HAPROXY_BIN, ['-c', '-f', HAPROXY_CONFIG], {
          env: { PATH: process.env.PATH, ...env },
        });
        expect(stdout).to.include('Configuration file is valid');
      }
    });
  });
});
