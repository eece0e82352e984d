// The bench's printed output: the machine line and Markdown tables (also pasted into docs/performance.md).
import os from 'node:os';
import type { Measurement } from './run-scenario.ts';

export function machineLine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  return `machine: ${cpus.length} cores, ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}, load average ${load}`;
}

const number = (value: number | undefined, digits = 0) =>
  value === undefined
    ? '–'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `a / reference` as "0.95×", or – when either is missing, zero or negative. */
function ratio(value: number | undefined, reference: number | undefined): string {
  // A negative reference (RSS that shrank while streams opened: noise) has no meaningful ratio.
  if (value === undefined || reference === undefined || reference <= 0 || value < 0) return '–';
  return `${(value / reference).toFixed(2)}×`;
}

type Pick = (measurement: Measurement) => number | undefined;

function withRatios(measurement: Measurement, all: Measurement[], pick: Pick, digits: number): string {
  const reference = (system: string) =>
    all.find((other) => other.scenario === measurement.scenario && other.system === system && other.ok);
  const value = pick(measurement);
  if (measurement.system !== 'pulseboard') return number(value, digits);
  const coalescing = reference('coalescing');
  const naive = reference('naive');
  const ratios = [
    coalescing && `${ratio(value, pick(coalescing))} c`,
    naive && `${ratio(value, pick(naive))} n`,
  ].filter(Boolean);
  return ratios.length > 0 ? `${number(value, digits)} (${ratios.join(', ')})` : number(value, digits);
}

export function markdownTable(results: Measurement[]): string {
  const lines = [
    '| scenario | system | delivered/s | lost | dupes | p50 ms | p99 ms | max ms | CPU µs/delivery | heap KiB/idle stream | RSS KiB/idle stream | setup s |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const result of results) {
    if (!result.ok) {
      lines.push(
        `| ${result.scenario} | ${result.system} | failed: ${result.error ?? '?'} | | | | | | | | | |`,
      );
      continue;
    }
    const cell = (pick: Pick, digits = 0) => withRatios(result, results, pick, digits);
    lines.push(
      [
        '',
        result.scenario,
        result.system,
        cell((m) => m.deliveredPerSec),
        number(result.lost),
        number(result.duplicates),
        number(result.latency?.p50Ms, 1),
        cell((m) => m.latency?.p99Ms, 1),
        number(result.latency?.maxMs, 1),
        cell((m) => m.cpuMicrosPerDelivery, 1),
        cell((m) => m.idleHeapKiBPerStream, 1),
        // RSS after a forced GC; marked * when the workers gave no after-GC reading (RSS after settling).
        `${cell((m) => m.idleKiBPerStream, 1)}${result.memoryAfterGc === false ? ' *' : ''}`,
        cell((m) => (m.setupMs === undefined ? undefined : m.setupMs / 1000), 1),
        '',
      ]
        .join(' | ')
        .trim(),
    );
  }
  const storms = results.filter((result) => result.ok && result.storm);
  if (storms.length > 0) {
    lines.push(
      '',
      '| storm | system | streams | all reconnected s | all resumed s | lost | dupes |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const result of storms) {
      const storm = result.storm!;
      lines.push(
        `| ${result.scenario} | ${result.system} | ${number(storm.dropped)} | ${number(storm.reconnectedMs / 1000, 1)} | ${storm.resumedMs === null ? `not all (${storm.resumed})` : number(storm.resumedMs / 1000, 1)} | ${number(result.lost)} | ${number(result.duplicates)} |`,
      );
    }
  }
  const raw = results.filter((result) => result.ok && result.ingest === 'raw');
  if (raw.length > 0) {
    lines.push(
      '',
      '| raw ingest | system | ingest lag p50 ms | p99 ms | max ms | lost | dupes |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const result of raw) {
      const lag = result.ingestLag;
      lines.push(
        `| ${result.scenario} | ${result.system} | ${number(lag?.p50Ms, 1)} | ${number(lag?.p99Ms, 1)} | ${number(lag?.maxMs, 1)} | ${number(result.lost)} | ${number(result.duplicates)} |`,
      );
    }
  }
  lines.push(
    '',
    '(c, n): pulseboard as a multiple of the coalescing and the naive ceiling in the same run. Memory: growth per idle stream after a forced full GC (\\*: RSS without GC).',
  );
  return `${lines.join('\n')}\n`;
}
