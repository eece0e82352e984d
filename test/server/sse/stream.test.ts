import http from 'node:http';
import { expect } from 'chai';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';

describe('GET /events on the wire', function () {
  this.timeout(20_000);
  let raws: RawStream[] = [];
  // Registered before the bed's, so the raw streams close before their app stops, as they always did.
  afterEach(function () {
    for (const raw of raws) raw.close();
    raws = [];
  });
  const bed = useTestBed();
  let app: TestApp | undefined;
  let session: TestSession;

  beforeEach(async function () {
    app = await bed.startApp({ HEARTBEAT_MS: '1000', SSE_RETRY_MS: '2000' });
    session = await bed.login(app.url);
  });

  async function open(headers: Record<string, string> = {}): Promise<RawStream> {
    const raw = await openRawStream(`${app!.url}/events`, { headers: { ...session.headers, ...headers } })
      .opened;
    raws.push(raw);
    return raw;
  }

  it('answers with the SSE headers of the design, uncompressed even when the client accepts gzip', async function () {
    const raw = await open({ 'Accept-Encoding': 'gzip, deflate, br' });
    const response = await raw.response;
    expect(response.statusCode).to.equal(200);
    expect(response.headers['content-type']).to.match(/^text\/event-stream/);
    expect(response.headers['cache-control']).to.equal('no-cache, no-transform');
    expect(response.headers['x-accel-buffering']).to.equal('no');
    expect(response.headers.connection).to.equal('close');
    expect(response.headers['content-encoding']).to.equal(undefined);
  });

  it('opens with a jittered retry between 1x and 1.5x SSE_RETRY_MS and a comment', async function () {
    const retries = new Set<number>();
    for (let index = 0; index < 8; index += 1) {
      const raw = await open();
      await raw.waitForText(/^retry: \d+\n\n: [^\n]*\n\n/);
      const retry = Number(/^retry: (\d+)/.exec(raw.text())?.[1]);
      expect(retry).to.be.within(2000, 3000);
      retries.add(retry);
      raw.close();
    }
    expect(retries.size, 'different clients get different delays').to.be.greaterThan(1);
  });

  it('writes a heartbeat event when idle for HEARTBEAT_MS, and none while events flow', async function () {
    const raw = await open();
    await raw.waitForText(/^retry: \d+\n\n: [^\n]*\n\n/);
    const opened = Date.now();
    // A named event (scripts see it, comments they do not), naming its period, with no id.
    await raw.waitForText(/\n\nevent: heartbeat\ndata: \{"every":1000\}\n\n/, 3000);
    expect(Date.now() - opened).to.be.within(700, 1600);

    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const before = raw.text().split('event: heartbeat').length;
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      await publisher.publish({ type: 'metric', name: 'busy', value: 1 });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(raw.text().split('event: heartbeat').length).to.equal(before);
  });

  it('frames each event as id, event and one data line of the envelope', async function () {
    const raw = await open();
    await raw.waitForText(/^retry: \d+\n\n: [^\n]*\n\n/);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const [id] = await publisher.publish({
      type: 'event',
      level: 'warn',
      title: 'line\nbreak',
      text: 'cr\r\nlf\n\nnul\u0000',
      ts: 1_700_000_000_000,
    });
    await raw.waitForText(/data: .*\n\n/);
    const frame = raw
      .text()
      .split('\n\n')
      .find((block) => block.startsWith('id: '));
    const lines = frame!.split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.equal(`id: main:${id}`);
    expect(lines[1]).to.equal('event: event');
    expect(lines[2]!.startsWith('data: {')).to.equal(true);
    expect(JSON.parse(lines[2]!.slice('data: '.length))).to.deep.equal({
      id,
      board: 'main',
      ts: 1_700_000_000_000,
      type: 'event',
      level: 'warn',
      title: 'line\nbreak',
      text: 'cr\r\nlf\n\nnul\u0000',
    });
  });

  it('answers HEAD /events with the stream headers at once and holds no stream (403 for a board it may not see)', async function () {
    const head = (path: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const request = http.request(`${app!.url}${path}`, { method: 'HEAD', headers: session.headers });
        request.setTimeout(3000, () => request.destroy(new Error(`HEAD ${path}: no answer within 3 s`)));
        request.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve(response));
        });
        request.on('error', reject);
        request.end();
      });
    const answer = await head('/events?boards=main');
    expect(answer.statusCode).to.equal(200);
    expect(answer.headers['content-type']).to.match(/^text\/event-stream/);
    expect(app!.hub.size, 'no stream kept open for a HEAD').to.equal(0);
    expect((await head('/events?boards=nope')).statusCode).to.equal(403);
    expect((await head('/events?boards=Bad')).statusCode).to.equal(400);
  });
});
