#!/usr/bin/env node
// `npm test` runs this first (the `pretest` script). The suite runs real components: redis-server,
// headless Chromium, HAProxy, and docker-compose to validate docker-compose.yml. On Debian or Ubuntu, as
// root or with passwordless sudo, it installs what is missing with apt-get; anywhere else it stops within
// a second, before any test, naming each missing tool and how to get it, instead of minutes of failures.
// Then, on a fresh clone, it runs `npm ci`. Plain JavaScript without dependencies, so it runs before that.
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
    override: 'CHROMIUM_PATH',
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
    override: 'HAPROXY_PATH',
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

/** The variable that points the suite at this tool, when it is set: apt-get cannot help then. */
function overridden(tool) {
  return tool.override && process.env[tool.override] ? tool.override : null;
}

/** Why a missing tool is missing, beyond "not installed". */
function detail(tool) {
  const variable = overridden(tool);
  return variable ? ` (${variable} is set to ${process.env[variable]}, which is not an executable file)` : '';
}

/**
 * The tools first (seconds), then the dependencies (npm ci, a minute): a machine that cannot run the suite
 * is told so before anything is downloaded.
 */
function main() {
  if (!checkNode()) return 1;
  let missing = TOOLS.filter((tool) => !tool.find());
  let cannotInstall = null;
  const installable = missing.filter((tool) => !overridden(tool));
  if (installable.length > 0) {
    cannotInstall = installMissing(installable);
    missing = TOOLS.filter((tool) => !tool.find());
  }
  const optional = missing.filter((tool) => tool.optional);
  for (const tool of optional) say(`${tool.name} is not installed; its test is skipped (${tool.how})`);
  const required = missing.filter((tool) => !tool.optional);
  if (required.length === 0) return checkDependencies() ? 0 : 1;
  const why =
    cannotInstall ??
    (installable.length > 0 ? 'apt-get could not install them' : 'a variable points at no executable file');
  say(`the test suite needs these tools (${why}):`);
  for (const tool of required) say(`  - ${tool.name}: ${tool.how}${detail(tool)}`);
  say('no test was run.');
  return 1;
}

process.exitCode = main();
