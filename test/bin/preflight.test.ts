// `npm test` starts with bin/preflight.js: on a machine where the suite's tools are missing and cannot be
// installed, it must stop at once, before any test, naming each tool and how to get it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PREFLIGHT = fileURLToPath(new URL('../../bin/preflight.js', import.meta.url));

describe('bin/preflight.js (npm pretest)', function () {
  let bin: string;

  before(async function () {
    // A PATH with node and nothing else: no redis-server, no docker-compose, no apt-get to install with.
    bin = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-preflight-'));
    await symlink(process.execPath, path.join(bin, 'node'));
  });
  after(async function () {
    await rm(bin, { recursive: true, force: true });
  });

  it('on a machine without the tools and no way to install them, stops within seconds naming each', function () {
    const started = Date.now();
    const result = spawnSync(path.join(bin, 'node'), [PREFLIGHT], {
      env: {
        PATH: bin,
        HOME: os.tmpdir(),
        CHROMIUM_PATH: '/nonexistent/chromium',
        HAPROXY_PATH: '/nonexistent/haproxy',
      },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(Date.now() - started).to.be.below(5000);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('no apt-get here to install them with');
    expect(result.stderr).to.include('- redis-server: Debian/Ubuntu: apt-get install redis-server');
    expect(result.stderr).to.include('- chromium: Debian: apt-get install chromium');
    expect(result.stderr).to.include('- haproxy: Debian/Ubuntu: apt-get install haproxy');
    expect(result.stderr).to.include('docker-compose is not installed; its test is skipped');
    expect(result.stderr).to.include('no test was run.');
  });

  it('passes quietly when every tool is where the tests look', async function () {
    const full = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-preflight-'));
    try {
      // Stand-ins: the preflight checks that each tool is there and executable, not what it does.
      for (const tool of ['node', 'redis-server', 'docker-compose']) {
        await symlink(process.execPath, path.join(full, tool));
      }
      const result = spawnSync(path.join(full, 'node'), [PREFLIGHT], {
        env: {
          PATH: full,
          HOME: os.tmpdir(),
          CHROMIUM_PATH: process.execPath,
          HAPROXY_PATH: process.execPath,
        },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(result.stderr).to.equal('');
      expect(result.status).to.equal(0);
    } finally {
      await rm(full, { recursive: true, force: true });
    }
  });
});
