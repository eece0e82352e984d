// Scenario names on the command line: `<streams>x<events per second>` (2000x50) or `storm` /
// `storm<streams>` (the reconnect storm: streams drop at once and come back with Last-Event-ID).

export interface Scenario {
  name: string;
  streams: number;
  rate: number;
  seconds: number;
  /** Storm only: when, after publishing starts, every stream is dropped and reopened. */
  stormAfterSeconds?: number;
}

export const DEFAULT_SCENARIOS = '2000x50,2000x150,5000x100,10000x20,storm';
/** Scenarios shorter than this are refused: the first second is warm-up on a busy machine. */
export const MIN_SECONDS = 5;
const STORM_RATE = 50;
const STORM_STREAMS = 5000;
const STORM_AFTER_SECONDS = 5;
/** The storm keeps publishing this long after the drop, so resumption happens while events flow. */
const STORM_TAIL_SECONDS = 10;
/** 50,000 streams at 1 event/s (docs/performance.md) runs for a minute unless --seconds says otherwise. */
const LARGE_SECONDS = 60;

export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

export function parseScenarios(list: string, seconds: number | undefined): Scenario[] {
  return list
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((name) => {
      const storm = /^storm(\d+)?$/.exec(name);
      if (storm) {
        const after = STORM_AFTER_SECONDS;
        return {
          name,
          streams: storm[1] ? Number(storm[1]) : STORM_STREAMS,
          rate: STORM_RATE,
          seconds: Math.max(seconds ?? 0, after + STORM_TAIL_SECONDS),
          stormAfterSeconds: after,
        };
      }
      const fanOut = /^(\d+)x(\d+(?:\.\d+)?)$/.exec(name);
      if (!fanOut)
        throw new ScenarioError(`unknown scenario "${name}": use <streams>x<events/s> (2000x50) or storm`);
      const streams = Number(fanOut[1]);
      const rate = Number(fanOut[2]);
      if (streams < 1 || rate <= 0)
        throw new ScenarioError(`scenario "${name}": streams and rate must be positive`);
      return { name, streams, rate, seconds: seconds ?? (streams >= 20_000 ? LARGE_SECONDS : MIN_SECONDS) };
    });
}
