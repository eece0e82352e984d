// `npm run bench`: pulseboard's fan-out against two minimal Node servers (the naive and the coalescing
// ceiling) on the same machine in the same run. Options and every figure: docs/performance.md.
//   npm run bench -- --scenario 2000x50,storm --system pulseboard,coalescing --seconds 10
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLine, markdownTable } from './report.ts';
import { installCleanup } from './processes.ts';
import { startBenchRedis } from './redis.ts';
import { runScenario, type Measurement, type RunSettings } from './run-scenario.ts';
import { DEFAULT_SCENARIOS, MIN_SECONDS, parseScenarios } from './scenarios.ts';
import { SYSTEM_NAMES, type SystemName } from './systems.ts';

const USAGE = `usage: npm run bench -- [--scenario ${DEFAULT_SCENARIOS}] [--system ${SYSTEM_NAMES.join(',')}]
  [--seconds N (>= ${MIN_SECONDS})] [--workers 2] [--ingest publisher|raw] [--threads 2] [--boards N]
  [--ceiling-session own|bench] [--cpu-prof dir] [--out file.json]`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        scenario: { type: 'string', default: DEFAULT_SCENARIOS },
        system: { type: 'string', default: SYSTEM_NAMES.join(',') },
        seconds: { type: 'string' },
        workers: { type: 'string', default: '2' },
        ingest: { type: 'string', default: 'publisher' },
        threads: { type: 'string', default: '2' },
        concurrency: { type: 'string', default: '256' },
        boards: { type: 'string', default: '0' },
        out: { type: 'string' },
        'ceiling-session': { type: 'string', default: 'own' },
        'cpu-prof': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
})();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
if (seconds !== undefined && !(seconds >= MIN_SECONDS)) fail(`--seconds must be a number >= ${MIN_SECONDS}`);
const positive = (name: string, raw: string) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a whole number >= 1`);
  return value;
};
const systems = values.system.split(',').map((name) => name.trim()) as SystemName[];
for (const name of systems) if (!SYSTEM_NAMES.includes(name)) fail(`unknown system "${name}"`);
if (values.ingest !== 'publisher' && values.ingest !== 'raw') fail('--ingest must be publisher or raw');
const ceilingSession = values['ceiling-session'];
if (ceilingSession !== 'own' && ceilingSession !== 'bench') fail('--ceiling-session must be own or bench');
const scenarios = (() => {
  try {
    return parseScenarios(values.scenario, seconds);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
})();

installCleanup();
const machine = machineLine();
const loadAverageAtStart = os.loadavg();
process.stderr.write(`${machine}\n`);
const redis = await startBenchRedis();
const settings: RunSettings = {
  redisUrl: redis.url,
  workers: positive('workers', values.workers),
  threadsPerDriver: positive('threads', values.threads),
  ingest: values.ingest,
  openConcurrency: positive('concurrency', values.concurrency),
  boards: values.boards === '0' ? 0 : positive('boards', values.boards),
  ceilingSession,
  ...(values['cpu-prof'] === undefined ? {} : { cpuProfileDir: resolve(values['cpu-prof']) }),
};
if (settings.cpuProfileDir !== undefined) await mkdir(settings.cpuProfileDir, { recursive: true });
const results: Measurement[] = [];
const startedAt = new Date();
try {
  for (const scenario of scenarios) {
    for (const system of systems) {
      process.stderr.write(
        `\n${scenario.name} (${scenario.streams} streams, ${scenario.rate}/s, ${scenario.seconds} s) on ${system}\n`,
      );
      const measurement = await runScenario(system, scenario, settings);
      if (!measurement.ok) process.stderr.write(`  FAILED: ${measurement.error}\n`);
      results.push(measurement);
    }
  }
} finally {
  await redis.close();
}

const run = {
  startedAt: startedAt.toISOString(),
  machine,
  cores: os.cpus().length,
  node: process.version,
  loadAverageAtStart,
  loadAverageAtEnd: os.loadavg(),
  options: { ...values, seconds },
  results,
};
const out = values.out ?? `bench/results/${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
await mkdir('bench/results', { recursive: true });
await writeFile(out, `${JSON.stringify(run, null, 2)}\n`);
process.stdout.write(`${machine}\n\n${markdownTable(results)}\nresults: ${out}\n`);
