// `npm test` starts with bin/preflight.js: on a machine where the suite's tools are missing and cannot be
// installed, it must stop at once, before any test, naming each tool and how to get it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
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

  /** A fresh clone (the preflight, no node_modules) and a PATH of `tools` plus stand-ins that note each call. */
  async function freshClone(tools: string[], recorded: string[]) {
    const root = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-preflight-'));
    const tree = path.join(root, 'clone');
    const pathDir = path.join(root, 'bin');
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await mkdir(pathDir);
    await copyFile(PREFLIGHT, path.join(tree, 'bin', 'preflight.js'));
    await symlink(process.execPath, path.join(pathDir, 'node'));
    for (const tool of tools) await symlink(process.execPath, path.join(pathDir, tool));
    for (const command of recorded) {
      const script = `#!/bin/sh\necho "$@" >> '${path.join(root, `${command}.calls`)}'\n`;
      await writeFile(path.join(pathDir, command), script, { mode: 0o755 });
    }
    return {
      run: (env: Record<string, string>) =>
        spawnSync(path.join(pathDir, 'node'), [path.join(tree, 'bin', 'preflight.js')], {
          env: { PATH: pathDir, HOME: os.tmpdir(), ...env },
          encoding: 'utf8',
          timeout: 10_000,
        }),
      called: (command: string) => existsSync(path.join(root, `${command}.calls`)),
      remove: () => rm(root, { recursive: true, force: true }),
    };
  }

  it('on a fresh clone, names the missing tools before installing any dependency (npm ci comes after)', async function () {
    const clone = await freshClone([], ['npm']);
    try {
      const started = Date.now();
      const result = clone.run({ CHROMIUM_PATH: process.execPath, HAPROXY_PATH: process.execPath });
      expect(Date.now() - started).to.be.below(5000);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include('- redis-server: Debian/Ubuntu: apt-get install redis-server');
      expect(result.stderr).to.not.include('npm ci');
      expect(clone.called('npm'), 'npm ci ran before the tools were checked').to.equal(false);
    } finally {
      await clone.remove();
    }
  });

  it('on a fresh clone with every tool, runs npm ci', async function () {
    const clone = await freshClone(['redis-server', 'docker-compose'], ['npm']);
    try {
      const result = clone.run({ CHROMIUM_PATH: process.execPath, HAPROXY_PATH: process.execPath });
      expect(result.stderr).to.include('node_modules is missing: running npm ci');
      expect(clone.called('npm')).to.equal(true);
    } finally {
      await clone.remove();
    }
  });

  it('does not try apt-get for a tool whose variable points at no file, and says which variable', async function () {
    // apt-get and sudo stand-ins: as root or with sudo this machine could install, but no package fixes a
    // CHROMIUM_PATH that points nowhere.
    const clone = await freshClone(['redis-server', 'docker-compose'], ['apt-get', 'sudo']);
    try {
      const started = Date.now();
      const result = clone.run({ CHROMIUM_PATH: '/nonexistent/chromium', HAPROXY_PATH: process.execPath });
      expect(Date.now() - started).to.be.below(5000);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include('CHROMIUM_PATH is set to /nonexistent/chromium');
      expect(result.stderr).to.not.include('haproxy');
      expect(clone.called('apt-get'), 'apt-get was run').to.equal(false);
    } finally {
      await clone.remove();
    }
  });
});
