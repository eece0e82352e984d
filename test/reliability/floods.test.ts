// Floods (docs/reliability.md, "Tests"): one session opening 1,000 streams across two workers gets exactly
// MAX_STREAMS_PER_SESSION of them (the rest a clear 429), another user's stream meanwhile misses nothing,
// and the session can open streams again once its own have closed.
import { expect } from 'chai';
import { createPublisher } from '../../shared/publisher.ts';
import { useTestBed } from '../helpers/test-bed.ts';

describe('floods', function () {
  this.timeout(120_000);
  const bed = useTestBed();

  it('one session asking for 1,000 streams across workers: the limit holds, others are unaffected, it recovers', async function () {
    const env = { MAX_STREAMS_PER_SESSION: '8' };
    const workers = [await bed.startApp(env), await bed.startApp(env)];
    const flooder = await bed.login(workers[0]!.url, { username: 'flooder' });
    const bystander = await bed.login(workers[1]!.url, { username: 'bystander' });
    const watching = bed.openStream(`${workers[1]!.url}/events`, { headers: bystander.headers });
    await watching.waitForOpen();

    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const published: string[] = [];
    let publishing = true;
    const publishLoop = (async () => {
      for (let value = 0; publishing; value += 1) {
        published.push(...(await publisher.publish({ type: 'metric', name: 'flood.test', value })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const controllers: AbortController[] = [];
    // The admitted streams' responses are kept referenced to the end: undici cancels the body of a fetch
    // Response that is garbage-collected unread, which closes its stream and frees its place in the quota
    // (a GC during the batches let a CI run admit 16).
    const open: Response[] = [];
    const statuses: number[] = [];
    for (let batch = 0; batch < 10; batch += 1) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, async (_, index) => {
          const controller = new AbortController();
          controllers.push(controller);
          const worker = workers[(batch * 100 + index) % 2]!;
          const response = await fetch(`${worker.url}/events`, {
            headers: flooder.headers,
            signal: controller.signal,
          });
          if (response.status !== 200) await response.text();
          else open.push(response);
          return response.status;
        }),
      );
      statuses.push(...answers);
    }
    expect(statuses.filter((status) => status === 200)).to.have.length(8);
    expect(statuses.filter((status) => status === 429)).to.have.length(992);
    expect(open).to.have.length(8);

    publishing = false;
    await publishLoop;
    await watching.waitFor(
      (events) => events.some((event) => event.id === published.at(-1)),
      10_000,
      'the last event at the bystander',
    );
    expect(watching.events.map((event) => event.id)).to.deep.equal(published);

    // Recovery: once its streams are closed, the session may open streams again.
    for (const controller of controllers) controller.abort();
    let again = 0;
    for (let attempt = 0; attempt < 50 && again !== 200; attempt += 1) {
      const controller = new AbortController();
      const response = await fetch(`${workers[0]!.url}/events`, {
        headers: flooder.headers,
        signal: controller.signal,
      });
      again = response.status;
      controller.abort();
      if (again !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(again).to.equal(200);
  });
});
