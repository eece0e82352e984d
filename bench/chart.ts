// `npm run bench:chart -- bench/results/<run>.json [docs/performance.svg]`: draws the run's fan-out
// scenarios as an SVG for docs/performance.md: delivered/s (higher is better) and p99 latency (lower is
// better, log scale) per scenario, one bar per system. No dependencies: the SVG is written by hand.
import { readFile, writeFile } from 'node:fs/promises';
import type { Measurement } from './run-scenario.ts';

const COLORS: Record<string, string> = { pulseboard: '#2563eb', coalescing: '#16a34a', naive: '#9ca3af' };
const WIDTH = 900;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 80, right: 20, top: 40, bottom: 50 };

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function panel(
  results: Measurement[],
  title: string,
  value: (measurement: Measurement) => number,
  format: (value: number) => string,
  logScale: boolean,
  top: number,
): string {
  const scenarios = [...new Set(results.map((result) => result.scenario))];
  const systems = [...new Set(results.map((result) => result.system))];
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const values = results.map(value).filter((number) => number > 0);
  const max = Math.max(1, ...values);
  const min = logScale ? Math.max(1, Math.min(...values)) / 2 : 0;
  const scale = (number: number) =>
    logScale
      ? (Math.log10(Math.max(number, min)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))
      : number / max;
  const group = plotWidth / scenarios.length;
  const bar = (group * 0.8) / systems.length;
  const parts = [
    `<text x="${MARGIN.left}" y="${top + 24}" font-size="15" font-weight="600">${escape(title)}</text>`,
    `<line x1="${MARGIN.left}" y1="${top + MARGIN.top + plotHeight}" x2="${WIDTH - MARGIN.right}" y2="${top + MARGIN.top + plotHeight}" stroke="#444"/>`,
  ];
  scenarios.forEach((scenario, scenarioIndex) => {
    const x0 = MARGIN.left + scenarioIndex * group + group * 0.1;
    parts.push(
      `<text x="${x0 + group * 0.4}" y="${top + MARGIN.top + plotHeight + 20}" text-anchor="middle" font-size="13">${escape(scenario)}</text>`,
    );
    systems.forEach((system, systemIndex) => {
      const result = results.find((item) => item.scenario === scenario && item.system === system);
      if (!result) return;
      const x = x0 + systemIndex * bar;
      if (!result.ok) {
        parts.push(
          `<text x="${x + bar / 2}" y="${top + MARGIN.top + plotHeight - 4}" text-anchor="middle" font-size="11">failed</text>`,
        );
        return;
      }
      const number = value(result);
      const height = Math.max(1, scale(number) * plotHeight);
      const y = top + MARGIN.top + plotHeight - height;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${height.toFixed(1)}" fill="${COLORS[system] ?? '#000'}"><title>${escape(`${system} ${scenario}: ${format(number)}`)}</title></rect>`,
        `<text x="${(x + bar / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="10">${escape(format(number))}</text>`,
      );
    });
  });
  return parts.join('\n');
}

function chartSvg(results: Measurement[], caption: string): string {
  const fanOut = results.filter((result) => !result.storm);
  const systems = [...new Set(fanOut.map((result) => result.system))];
  const height = PANEL_HEIGHT * 2 + 70;
  const legend = systems
    .map(
      (system, index) =>
        `<rect x="${MARGIN.left + index * 150}" y="${height - 52}" width="14" height="14" fill="${COLORS[system] ?? '#000'}"/><text x="${MARGIN.left + index * 150 + 20}" y="${height - 40}" font-size="13">${escape(system)}</text>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${panel(
  fanOut,
  'Delivered events per second (higher is better)',
  (m) => m.deliveredPerSec ?? 0,
  (n) => `${Math.round(n / 1000)}k`,
  false,
  0,
)}
${panel(
  fanOut,
  'p99 publish-to-receive latency, ms, log scale (lower is better)',
  (m) => m.latency?.p99Ms ?? 0,
  (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`),
  true,
  PANEL_HEIGHT,
)}
${legend}
<text x="${MARGIN.left}" y="${height - 12}" font-size="11" fill="#555">${escape(caption)}</text>
</svg>
`;
}

const [input, output = 'docs/performance.svg'] = process.argv.slice(2);
if (!input) {
  process.stderr.write('usage: npm run bench:chart -- bench/results/<run>.json [docs/performance.svg]\n');
  process.exit(2);
}
const run = JSON.parse(await readFile(input, 'utf8')) as {
  startedAt: string;
  machine: string;
  results: Measurement[];
};
await writeFile(
  output,
  chartSvg(run.results, `${run.startedAt.slice(0, 16)} UTC, ${run.machine.split(', load')[0]}`),
);
process.stdout.write(`wrote ${output}\n`);
