// The bench's warm-up runs through the driver pool that then opens the measured streams
// (docs/performance.md, "How it measures", Warm-up): a warm-up round's streams all answer and are all
// closed again, and the measured streams are opened afterwards as before. The SSE server runs in a
// process of its own, as the systems the bench measures do.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { DriverPool } from '../../bench/driver-pool.ts';

/** Answers every request as an SSE stream; prints its port once listening. */
const SERVER = `
const server = require('node:http').createServer((request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/event-stream' });
  response.write(': ok\\n\\n');
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

describe('bench driver pool: warm-up rounds', function () {
  this.timeout(60_000);
  let server: ChildProcess | undefined;
  let pool: DriverPool | undefined;

  afterEach(async () => {
    await pool?.close();
    if (server?.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill();
      await exited;
    }
  });

  it('opens and closes a round through the measured threads, then opens the measured streams', async () => {
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve) =>
      server!.stdout!.once('data', (data: Buffer) => resolve(Number(String(data)))),
    );
    pool = await DriverPool.start({
      host: '127.0.0.1',
      port,
      streams: 40,
      threadsPerDriver: 2,
      epochMs: Date.now(),
      maxSeq: 10,
      addressBlock: 7,
    });

    expect(await pool.warm([], 60, 16, 203)).to.deep.equal({ failures: 0 });
    // Every warm-up stream answered (the pool counted it open) and was closed again.
    let stats = await pool.stats();
    for (const deadline = Date.now() + 10_000; stats.open > 0 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stats = await pool.stats();
    }
    expect(stats.open).to.equal(0);
    expect(stats.errors).to.equal(0);

    expect(await pool.open([], 16)).to.deep.equal({ failures: 0 });
    expect((await pool.stats()).open).to.equal(40);
  });
});
