import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { TokenStore } from '../../../server/auth/tokens.ts';
import { errorResponseSchema } from '../../../shared/api.ts';
import { redisNames } from '../../../shared/keys.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

/** Reads an answer in the JSON error shape and returns its code. */
async function errorCode(response: Response): Promise<string> {
  expect(response.headers.get('content-type')).to.match(/^application\/json/);
  return errorResponseSchema.parse(await response.json()).error.code;
}

describe('error answers', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('a body that does not decode as its Content-Encoding is 400, an unknown encoding 415, never 500', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const truncated = new Blob([
      gzipSync(JSON.stringify({ username: 'a', password: 'bbbbbbbb' })).subarray(0, 12),
    ]);
    const cases: { encoding: string; body: Blob | string; status: number; code: string }[] = [
      { encoding: 'gzip', body: 'not compressed at all', status: 400, code: 'bad_encoding' },
      { encoding: 'deflate', body: 'not compressed at all', status: 400, code: 'bad_encoding' },
      { encoding: 'br', body: 'not compressed at all', status: 400, code: 'bad_encoding' },
      { encoding: 'gzip', body: truncated, status: 400, code: 'bad_encoding' },
      { encoding: 'zstd', body: 'x', status: 415, code: 'unsupported_media_type' },
      { encoding: 'gzip, gzip', body: 'x', status: 415, code: 'unsupported_media_type' },
    ];
    for (const { encoding, body, status, code } of cases) {
      const label = `${encoding} ${typeof body === 'string' ? body : 'truncated gzip'}`;
      // Without a session (login) and with one (a logged-in user logging in again).
      for (const headers of [{ Origin: new URL(app.url).origin }, session.csrfHeaders]) {
        const login = await fetch(`${app.url}/api/login`, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json', 'Content-Encoding': encoding },
          body,
        });
        expect(login.status, label).to.equal(status);
        expect(await errorCode(login), label).to.equal(code);
      }
    }
    // The publish path reads its body only with a valid token: make one.
    const created = await new TokenStore(bed.client, redisNames(bed.prefix)).create('enc', 'publisher');
    for (const { encoding, body, status, code } of cases) {
      const publish = await fetch(`${app.url}/api/publish`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${created.token}`,
          'Content-Type': 'application/json',
          'Content-Encoding': encoding,
        },
        body,
      });
      expect(publish.status, `publish ${encoding}`).to.equal(status);
      expect(await errorCode(publish), `publish ${encoding}`).to.equal(code);
    }
  });

  it('405 answers are JSON in the error shape and name the allowed methods', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    for (const [method, path] of [
      ['PUT', '/api/snapshot'],
      ['DELETE', '/api/session'],
      ['PATCH', '/events'],
      ['POST', '/api/snapshot'],
    ] as const) {
      const response = await fetch(`${app.url}${path}`, { method, headers: session.csrfHeaders });
      expect(response.status, `${method} ${path}`).to.equal(405);
      expect(response.headers.get('allow'), `${method} ${path}`).to.match(/GET/);
      expect(await errorCode(response), `${method} ${path}`).to.equal('method_not_allowed');
    }
  });
});
