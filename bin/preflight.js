#!/usr/bin/env node
// `npm test` runs this first (the `pretest` script). The suite runs real components: redis-server,
// headless Chromium, HAProxy, and docker-compose to validate docker-compose.yml. On Debian or Ubuntu, as
// root or with passwordless sudo, it installs what is missing with apt-get; anywhere else it stops within
// a second, before any test, naming each missing tool and how to get it, instead of minutes of failures.
// Plain JavaScript without dependencies, so it also runs on a fresh clone before `npm ci`.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIN_NODE = [20, 19];

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return dirs.map((dir) => path.join(dir, command)).find(executable);
}

/**
 * What the suite needs, found where the tests look: CHROMIUM_PATH and HAPROXY_PATH override the places
 * test/browser/helpers/chromium.ts and test/ops/haproxy.ts use by default.
 */
const TOOLS = [
  {
    name: 'redis-server',
    find: () => onPath('redis-server'),
    packages: ['redis-server'],
    how: 'Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis',
  },
  {
    name: 'chromium',
    find: () =>
      process.env.CHROMIUM_PATH
        ? [process.env.CHROMIUM_PATH].find(executable)
        : ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'].find(executable),
    // Debian ships `chromium`; Ubuntu ships `chromium-browser`, which installs the snap.
    packages: ['chromium', 'chromium-browser'],
    how: 'Debian: apt-get install chromium; Ubuntu: snap install chromium; elsewhere set CHROMIUM_PATH to a Chromium or Chrome binary',
  },
  {
    name: 'haproxy',
    find: () => [process.env.HAPROXY_PATH ?? '/usr/sbin/haproxy'].find(executable),
    packages: ['haproxy'],
    how: 'Debian/Ubuntu: apt-get install haproxy; elsewhere set HAPROXY_PATH to an haproxy binary',
  },
  {
    name: 'docker-compose',
    find: () => onPath('docker-compose'),
    packages: ['docker-compose'],
    how: 'Debian/Ubuntu: apt-get install docker-compose',
    // Only the docker-compose.yml check uses it, and it says it skips without it.
    optional: true,
  },
];

function say(line) {
  process.stderr.write(`preflight: ${line}\n`);
}

function run(command, args, env = process.env) {
  return spawnSync(command, args, { stdio: 'inherit', env }).status === 0;
}

/** `sudo` when needed and allowed without a password; null when packages cannot be installed here. */
function installer() {
  if (process.platform !== 'linux' || !onPath('apt-get')) return null;
  if (process.getuid?.() === 0) return [];
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo'];
  return null;
}

function aptInstall(prefix, packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [command, ...args] = [...prefix, 'apt-get'];
  return run(command, [...args, 'install', '-y', '-qq', '--no-install-recommends', ...packages], env);
}

function checkNode() {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return true;
  say(`Node.js ${process.versions.node} is too old: ${MIN_NODE.join('.')} or newer is needed`);
  return false;
}

/** A fresh clone: install the locked dependencies first (what `npm ci` would do by hand). */
function checkDependencies() {
  if (existsSync(path.join(ROOT, 'node_modules', '.bin', 'mocha'))) return true;
  say('node_modules is missing: running npm ci');
  return run('npm', ['ci', '--no-audit', '--no-fund'], { ...process.env, npm_config_loglevel: 'warn' });
}

/** Tries apt-get; returns why nothing could be installed, or null after trying. */
function installMissing(missing) {
  const sudo = installer();
  if (sudo === null) {
    return process.platform === 'linux' && onPath('apt-get')
      ? 'installing needs root or passwordless sudo'
      : 'no apt-get here to install them with';
  }
  say(`installing with apt-get: ${missing.map((tool) => tool.name).join(', ')}`);
  const [command, ...args] = [...sudo, 'apt-get'];
  run(command, [...args, 'update', '-qq'], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
  for (const tool of missing) {
    // One package at a time, trying each name in turn: a name this release does not have (Ubuntu has
    // no `chromium`) must not stop the others from installing.
    for (const name of tool.packages) {
      if (aptInstall(sudo, [name]) && tool.find()) break;
    }
  }
  return null;
}

function main() {
  if (!checkNode() || !checkDependencies()) return 1;
  let missing = TOOLS.filter((tool) => !tool.find());
  let cannotInstall = null;
  if (missing.length > 0) {
    cannotInstall = installMissing(missing);
    missing = TOOLS.filter((tool) => !tool.find());
  }
  const optional = missing.filter((tool) => tool.optional);
  for (const tool of optional) say(`${tool.name} is not installed; its test is skipped (${tool.how})`);
  const required = missing.filter((tool) => !tool.optional);
  if (required.length === 0) return 0;
  say(`the test suite needs these tools (${cannotInstall ?? 'apt-get could not install them'}):`);
  for (const tool of required) say(`  - ${tool.name}: ${tool.how}`);
  say('no test was run.');
  return 1;
}

process.exitCode = main();
