// The CLI keeps secrets out of what it prints and off the command line, and never lets text from the
// other end of the wire reach the terminal unescaped (docs/security.md, "Hardening"). The real CLI, real processes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { runCli } from '../../helpers/cli.ts';
import { freePort } from '../../helpers/redis-server.ts';

// ESC ] (OSC: set the window title), a CSI sequence that clears the screen, BEL, a C1 CSI, a bidi override.
const HOSTILE = 'pwned\u001b]0;owned\u0007\u001b[2J\u009b31m\u202eevil';
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('CLI secrets and terminal safety', function () {
  this.timeout(30_000);
  let server: http.Server | undefined;
  afterEach(async function () {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('`cannot reach Redis` names the Redis without its password', async function () {
    const port = await freePort(); // nothing listens there
    const url = `redis://reporter:s3cret-Pa55word@127.0.0.1:${port}/0`;
    for (const args of [
      ['user', 'list'],
      ['token', 'list'],
      ['board', 'list'],
      ['publish', 'status', 'api', 'ok'],
      ['publish', '--durable', 'metric', 'api.latency', '12'],
    ]) {
      const result = await runCli(args, { REDIS_URL: url });
      expect(result.code, args.join(' ')).to.equal(1);
      expect(result.stderr, args.join(' ')).to.match(
        new RegExp(
          `^pulseboard ${args[0]}: cannot reach Redis at redis://reporter:\\*\\*\\*@127\\.0\\.0\\.1:\\d+/0`,
        ),
      );
      expect(result.stderr + result.stdout, args.join(' ')).to.not.include('s3cret-Pa55word');
    }
    const demo = await runCli(['demo'], { REDIS_URL: url });
    expect(demo.code).to.equal(1);
    expect(demo.stderr).to.match(
      /No Redis answered at REDIS_URL=redis:\/\/reporter:\*\*\*@127\.0\.0\.1:\d+\/0/,
    );
    expect(demo.stderr + demo.stdout).to.not.include('s3cret-Pa55word');
  });

  it('a bad configuration is one message naming the variable and exit 1, never a stack trace', async function () {
    for (const args of [['user', 'list'], ['token', 'list'], ['publish', 'status', 'api', 'ok'], ['tail']]) {
      const result = await runCli(args, { PORT: 'eighty' });
      expect(result.code, args.join(' ')).to.equal(1);
      expect(result.stderr, args.join(' ')).to.match(
        new RegExp(`^pulseboard ${args[0]}: invalid configuration:\n  - PORT: `),
      );
      expect(result.stderr, args.join(' ')).to.not.match(/\n\s+at /);
    }
  });

  it('`tail --cookie` is refused (exit 2) without connecting anywhere; PULSEBOARD_COOKIE is the way', async function () {
    let requests = 0;
    server = http.createServer((_request, response) => {
      requests += 1;
      response.writeHead(401).end();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const result = await runCli(['tail', '--url', url, '--cookie', 'pulseboard.sid=secret'], {});
    expect(result.code).to.equal(2);
    expect(result.stderr).to.match(/--cookie would put a session on the command line.*PULSEBOARD_COOKIE/);
    expect(requests).to.equal(0);
  });

  it('`tail` escapes what a hostile server says when it refuses the stream or the login', async function () {
    server = http.createServer((request, response) => {
      const body = JSON.stringify({ error: { code: 'unauthorized', message: HOSTILE } });
      if (request.url === '/api/login') {
        response.writeHead(401, { 'Content-Type': 'application/json' }).end(body);
        return;
      }
      response.writeHead(400, { 'Content-Type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const refused = await runCli(['tail', '--url', url], { PULSEBOARD_COOKIE: 'a=b' });
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.include('pwned\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m\\u202eevil');
    expect(refused.stderr).to.not.match(CONTROLS);

    const login = await runCli(['tail', '--url', url, '--user', 'alice'], { PULSEBOARD_PASSWORD: 'x' });
    expect(login.code).to.equal(1);
    expect(login.stderr).to.match(/login as alice failed \(401\): pwned\\u001b/);
    expect(login.stderr).to.not.match(CONTROLS);
  });
});
