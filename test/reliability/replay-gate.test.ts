// The replay gate (server/sse/replay-gate.ts; docs/reliability.md, "Reconnect storms and memory"): at most
// `limit` client replays at once, the rest in arrival order, a finished or failed replay handing its turn
// on. Without it, a reload's storm ran every replay at once (1,000 in one worker).
import { expect } from 'chai';
import { ReplayGate } from '../../server/sse/replay-gate.ts';

function deferred(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('replay gate', function () {
  it('runs at most `limit` replays at once and starts the waiting ones in order as turns free up', async function () {
    const gate = new ReplayGate(2);
    const started: number[] = [];
    const finish = Array.from({ length: 5 }, () => deferred());
    const runs = finish.map((step, index) =>
      gate.run(async () => {
        started.push(index);
        await step.promise;
      }),
    );
    // Observed now, so the failure below is not reported as unhandled before allSettled looks at it.
    for (const run of runs) run.catch(() => undefined);
    await tick();
    expect(started).to.deep.equal([0, 1]);
    expect(gate.queued).to.equal(3);
    finish[1]!.resolve();
    await tick();
    expect(started).to.deep.equal([0, 1, 2]);
    // A replay that fails (Redis away) hands its turn on too; the failure reaches its caller.
    finish[0]!.reject(new Error('the client is closed'));
    await tick();
    expect(started).to.deep.equal([0, 1, 2, 3]);
    for (const step of finish.slice(2)) step.resolve();
    const outcomes = await Promise.allSettled(runs);
    expect(outcomes.map((outcome) => outcome.status)).to.deep.equal([
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(started).to.deep.equal([0, 1, 2, 3, 4]);
    expect(gate.queued).to.equal(0);
    // All turns are free again: two start at once.
    const again = [deferred(), deferred()];
    const more: number[] = [];
    const rerun = again.map((step, index) =>
      gate.run(async () => {
        more.push(index);
        await step.promise;
      }),
    );
    await tick();
    expect(more).to.deep.equal([0, 1]);
    for (const step of again) step.resolve();
    await Promise.all(rerun);
  });
});
