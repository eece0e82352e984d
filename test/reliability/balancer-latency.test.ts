// Events through the shipped balancer (deploy/haproxy.cfg) arrive at once. Without `option http-no-delay`
// HAProxy forwards chunked bodies with MSG_MORE and the kernel holds each event of a quiet stream for up to
// 200 ms: every event arrived ~210 ms late (docs/reliability.md, "Floods of sockets"). The median is
// asserted, far above loopback's few ms and far below the 200 ms hold, so a loaded machine does not
// decide it.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { until } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { HAPROXY_BIN, startHaproxy, type Balancer } from '../ops/haproxy.ts';
import { latencies, openRawStream, percentile, publishTimed, type RawStream } from './load-probes.ts';

describe('events through deploy/haproxy.cfg', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  let balancer: Balancer | undefined;
  let stream: RawStream | undefined;
  afterEach(async function () {
    stream?.close();
    stream = undefined;
    await balancer?.stop();
    balancer = undefined;
  });

  it('reach a quiet stream without the kernel holding them (median delivery well under 200 ms)', async function () {
    if (!existsSync(HAPROXY_BIN)) {
      console.log(`      skipped: ${HAPROXY_BIN} is not installed (apt-get install haproxy)`);
      this.skip();
    }
    const app = await bed.startApp({ TRUST_PROXY: 'true' });
    const host = new URL(app.url).host;
    balancer = await startHaproxy(host, host);
    const { headers } = await bed.login(balancer.url);
    stream = openRawStream(`${balancer.url}/events`, headers, '127.0.0.2');
    expect(await stream.status).to.equal(200);
    // One event every 250 ms: each is alone, so nothing that follows would flush a held one early.
    const sent = await publishTimed(bed.client, bed.prefix, 16, 250, 'balancer.latency');
    await until(() => stream!.arrivedAt.has(sent.at(-1)!.id), 10_000, 'the events through HAProxy');
    const delivery = latencies(sent, stream);
    const p50 = percentile(delivery, 50);
    console.log(
      `      16 events through HAProxy: delivery p50 ${p50.toFixed(1)} ms, p99 ${percentile(delivery, 99).toFixed(1)} ms`,
    );
    expect(stream.ids).to.deep.equal(sent.map((event) => event.id));
    expect(p50).to.be.below(100);
  });
});
