import { expect } from 'chai';
import { errorResponseSchema, publishResponseSchema } from '../../../shared/api.ts';
import { redisNames } from '../../../shared/keys.ts';
import { TokenStore } from '../../../server/auth/tokens.ts';
import type { TestApp } from '../../helpers/app.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('POST /api/publish', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let app: TestApp | undefined;
  let tokens: TokenStore;

  beforeEach(async function () {
    tokens = new TokenStore(bed.client, redisNames(bed.prefix));
    app = await bed.startApp();
  });

  function publish(body: string, headers: Record<string, string>): Promise<Response> {
    return fetch(`${app!.url}/api/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body,
    });
  }

  const logLength = () => bed.client.xLen(redisNames(bed.prefix).log);

  it('publishes with an API token: answers the ids and the event reaches logged-in browsers', async function () {
    const { token } = await tokens.create('ci');
    const session = await bed.login(app!.url);
    const stream = bed.openStream(`${app!.url}/events`, { headers: session.headers });
    await stream.waitForOpen();

    const response = await publish(JSON.stringify({ type: 'status', service: 'api', state: 'degraded' }), {
      Authorization: `Bearer ${token}`,
    });
    expect(response.status).to.equal(200);
    const { ids } = publishResponseSchema.parse(await response.json());
    expect(ids).to.have.length(1);
    await stream.waitFor((events) => events.length === 1, 2000, 'the published status');
    expect(stream.events[0]).to.include({ id: ids[0], type: 'status', service: 'api', state: 'degraded' });
    expect(await logLength()).to.equal(1);

    const batch = await publish(
      JSON.stringify({
        type: 'metrics',
        points: [
          { name: 'cpu', value: 0.5 },
          { name: 'cpu', value: 0.7 },
        ],
      }),
      { authorization: `bearer ${token}` },
    );
    expect(batch.status).to.equal(200);
    expect(publishResponseSchema.parse(await batch.json()).ids).to.have.length(2);
    const ingested = await app!.metrics.eventsIngested.get();
    const http = ingested.values.filter((value) => value.labels.source === 'http');
    expect(Object.fromEntries(http.map((value) => [value.labels.type, value.value]))).to.deep.equal({
      status: 1,
      metric: 2,
    });
  });

  it('answers 401 for a missing, wrong, malformed or revoked token, and sequences nothing', async function () {
    const { token, record } = await tokens.create('ci');
    const event = JSON.stringify({ type: 'event', level: 'info', title: 'deploy' });
    const session = await bed.login(app!.url, { role: 'admin', username: 'root' });
    const attempts: Record<string, Record<string, string>> = {
      missing: {},
      wrong: { Authorization: `Bearer pb_${'A'.repeat(43)}` },
      malformed: { Authorization: `Bearer ${token}x` },
      basic: { Authorization: `Basic ${Buffer.from(`ci:${token}`).toString('base64')}` },
      // A logged-in admin's cookie is no API token.
      cookie: session.csrfHeaders,
    };
    for (const [what, headers] of Object.entries(attempts)) {
      const response = await publish(event, headers);
      expect(response.status, what).to.equal(401);
      expect(response.headers.get('www-authenticate'), what).to.equal('Bearer realm="pulseboard"');
      expect(errorResponseSchema.parse(await response.json()).error.code, what).to.equal('unauthorized');
    }
    expect((await publish(event, { Authorization: `Bearer ${token}` })).status).to.equal(200);
    expect(await tokens.revoke(record.id)).to.equal(1);
    expect((await publish(event, { Authorization: `Bearer ${token}` })).status).to.equal(401);
    expect(await logLength()).to.equal(1);
  });

  it('refuses invalid input naming the field, and sequences none of it', async function () {
    const { token } = await tokens.create('ci');
    const auth = { Authorization: `Bearer ${token}` };
    const cases: [string, string, number, string | undefined][] = [
      ['bad state', JSON.stringify({ type: 'status', service: 'api', state: 'sideways' }), 400, 'state'],
      ['unknown type', JSON.stringify({ type: 'bogus' }), 400, 'type'],
      [
        'unknown field',
        JSON.stringify({ type: 'metric', name: 'cpu', value: 1, extra: true }),
        400,
        undefined,
      ],
      ['not finite', '{"type":"metric","name":"cpu","value":1e999}', 400, 'value'],
      ['bad json', '{"type":', 400, undefined],
      ['empty', '', 400, undefined],
      // Bounded against Redis' clock by the sequencing script (docs/events.md, "Timestamps").
      [
        'future ts',
        JSON.stringify({ type: 'status', service: 'api', state: 'ok', ts: Date.now() + 3_600_000 }),
        400,
        'ts',
      ],
      [
        'microsecond ts',
        JSON.stringify({ type: 'metric', name: 'cpu', value: 1, ts: Date.now() * 1000 }),
        400,
        'ts',
      ],
    ];
    for (const [what, body, status, field] of cases) {
      const response = await publish(body, auth);
      expect(response.status, what).to.equal(status);
      const { error } = errorResponseSchema.parse(await response.json());
      expect(error.code, what).to.equal('invalid_input');
      if (field) expect(error.field, what).to.equal(field);
    }
    const tooLarge = await publish(
      JSON.stringify({ type: 'event', level: 'info', title: 'x', text: 'y'.repeat(70 * 1024) }),
      auth,
    );
    expect(tooLarge.status).to.equal(413);
    expect(errorResponseSchema.parse(await tooLarge.json()).error.code).to.equal('payload_too_large');
    const wrongType = await fetch(`${app!.url}/api/publish`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'type=status',
    });
    expect(wrongType.status).to.equal(415);
    expect(await logLength()).to.equal(0);
    const rejected = await app!.metrics.eventsRejected.get();
    const http = rejected.values.filter((value) => value.labels.source === 'http');
    expect(Object.fromEntries(http.map((value) => [value.labels.reason, value.value]))).to.deep.equal({
      invalid: 5,
      unknown_type: 1,
      bad_json: 2,
      too_large: 1,
    });
  });
});
