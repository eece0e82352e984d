// Issue 14, item 15: each simulator keeps its own state, so a second demo (or test) in one process starts
// from every service ok, whatever the first one drifted to.
import { expect } from 'chai';
import { startSimulator } from '../../../server/demo/simulator.ts';
import { parseEventInput, type StatusInput } from '../../../shared/events.ts';
import type { Publisher } from '../../../shared/publisher.ts';

/** Keeps what a simulator publishes, after checking it against the event schema as the real publisher does. */
function recordingPublisher(): Publisher & { statuses: StatusInput[] } {
  const statuses: StatusInput[] = [];
  return {
    statuses,
    async publish(input: unknown) {
      const parsed = parseEventInput(input);
      if (!parsed.ok) throw new Error(parsed.message);
      if (parsed.value.type === 'status') statuses.push(parsed.value);
      return [];
    },
  };
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('demo simulator', function () {
  this.timeout(20_000);

  it('a second simulator starts from every service ok after the first one drifted', async function () {
    const first = recordingPublisher();
    const drifting = startSimulator(first, { intervalMs: 1 });
    try {
      // Wait until some service's latest state is not 'ok' (stopped in the same turn, so it stays so).
      await until(() => {
        const latest = new Map(first.statuses.map((status) => [status.service, status.state]));
        return [...latest.values()].some((state) => state !== 'ok');
      }, 15_000);
    } finally {
      drifting.stop();
    }
    const second = recordingPublisher();
    const fresh = startSimulator(second, { intervalMs: 1 });
    try {
      await until(() => second.statuses.length >= 8, 5000);
    } finally {
      fresh.stop();
    }
    expect(second.statuses.slice(0, 8).map((status) => status.state)).to.deep.equal(Array(8).fill('ok'));
  });

  it('simulates services and a metric on each extra board it is given, leaving main as it was', async function () {
    const inputs: { type: string; board?: string }[] = [];
    const publisher: Publisher = {
      async publish(input: unknown) {
        const parsed = parseEventInput(input);
        if (!parsed.ok) throw new Error(parsed.message);
        inputs.push(parsed.value);
        return [];
      },
    };
    const simulator = startSimulator(publisher, { intervalMs: 1, boards: ['payments', 'edge'] });
    try {
      await until(() => inputs.filter((input) => input.type === 'status').length >= 12, 5000);
    } finally {
      simulator.stop();
    }
    const statusBoards = inputs.filter((input) => input.type === 'status').map((input) => input.board);
    expect(statusBoards.slice(0, 12)).to.deep.equal([
      ...Array<undefined>(8).fill(undefined),
      'payments',
      'payments',
      'edge',
      'edge',
    ]);
    const metricBoards = new Set(
      inputs.filter((input) => input.type === 'metric').map((input) => input.board),
    );
    expect([...metricBoards].sort()).to.deep.equal(['edge', 'payments']);
  });
});
