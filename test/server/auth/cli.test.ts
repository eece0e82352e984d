import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { EventSource } from 'eventsource';
import { errorResponseSchema, publishResponseSchema, sessionResponseSchema } from '../../../shared/api.ts';
import type { TestApp } from '../../helpers/app.ts';
import { until } from '../../helpers/sse-client.ts';
import { runCli, type CliResult } from '../../helpers/cli.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { loginRequest } from './requests.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('pulseboard user and token commands', function () {
  this.timeout(60_000);
  const bed = useTestBed({ client: false });

  function env(): NodeJS.ProcessEnv {
    return { ...process.env, REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix, LOG_LEVEL: 'silent' };
  }

  /** Runs the real `pulseboard` binary with `input` piped to stdin. */
  function cli(args: string[], input = ''): Promise<CliResult> {
    return runCli(args, env(), input);
  }

  async function openSessionStream(app: TestApp, username: string) {
    const session = await bed.login(app.url, { username });
    const stream = bed.openStream(`${app.url}/events`, { headers: session.headers });
    await stream.waitForOpen();
    return { session, stream };
  }

  it('adds a user with the password from stdin, who can then log in with that role', async function () {
    const app = await bed.startApp();
    const added = await cli(['user', 'add', 'Alice', '--role', 'admin'], 'alice-password-1\n');
    expect(added, added.stderr).to.include({ code: 0, stdout: 'added user alice (admin)\n' });
    const response = await loginRequest(app.url, 'alice', 'alice-password-1');
    expect(response.status).to.equal(200);
    expect(sessionResponseSchema.parse(await response.json()).user).to.deep.equal({
      name: 'alice',
      role: 'admin',
    });

    const listed = await cli(['user', 'list']);
    expect(listed.code).to.equal(0);
    // The first start created admin too; hashes are never printed.
    expect(listed.stdout).to.match(/^admin\s+admin\s+created /m);
    expect(listed.stdout).to.match(/^alice\s+admin\s+created /m);
    expect(listed.stdout).to.not.include('scrypt');
  });

  it('refuses a duplicate user, a short password and an unknown role with a message and exit code 1', async function () {
    expect((await cli(['user', 'add', 'bob'], 'bob-password-1\n')).code).to.equal(0);
    const duplicate = await cli(['user', 'add', 'BOB'], 'other-password\n');
    expect(duplicate).to.include({ code: 1, stderr: 'pulseboard user: user bob already exists\n' });
    const short = await cli(['user', 'add', 'carol'], 'short\n');
    expect(short).to.include({
      code: 1,
      stderr: 'pulseboard user: password must have at least 8 characters\n',
    });
    const role = await cli(['user', 'add', 'dave', '--role', 'root'], 'dave-password-1\n');
    expect(role).to.include({ code: 1, stderr: 'pulseboard user: role must be one of viewer, admin\n' });
    const missing = await cli(['user', 'remove', 'nobody']);
    expect(missing).to.include({ code: 1, stderr: 'pulseboard user: no user nobody\n' });
  });

  it('reads the password from a terminal without echoing it', async function () {
    if (spawnSync('script', ['--version']).status !== 0) this.skip(); // util-linux `script` gives us a pty
    const typed = 'typed-secret-42';
    // Type the password when each prompt has appeared (not after fixed delays: a slow start would let
    // the terminal echo keystrokes typed before the prompt muted it).
    const child = spawn(
      'script',
      ['-qec', `${process.execPath} bin/pulseboard.js user add erin`, '/dev/null'],
      {
        cwd: ROOT,
        env: env(),
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    const prompts = ['Password for erin:', 'Repeat it:'];
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (prompts.length > 0 && stdout.includes(prompts[0]!)) {
        prompts.shift();
        child.stdin.write(`${typed}\r`);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stdout).to.equal(0);
    expect(stdout).to.include('Password for erin:');
    expect(stdout).to.include('Repeat it:');
    expect(stdout).to.include('added user erin (viewer)');
    expect(stdout).to.not.include(typed);
    const app = await bed.startApp();
    expect((await loginRequest(app.url, 'erin', typed)).status).to.equal(200);
  });

  it("passwd changes the password, ends the user's sessions and closes their streams within a second", async function () {
    const app = await bed.startApp();
    const { session, stream } = await openSessionStream(app, 'frank');
    const changed = await cli(['user', 'passwd', 'frank'], 'frank-new-password\n');
    expect(changed.code, changed.stderr).to.equal(0);
    const changedAt = Date.now();
    await until(() => app.hub.size === 0, 5000, "frank's stream to close"); // the bound is asserted next
    expect(Date.now() - changedAt).to.be.below(1000);
    await until(() => stream.source.readyState === EventSource.CLOSED, 10_000, 'the reconnect to be refused');
    expect((await fetch(`${app.url}/api/session`, { headers: session.headers })).status).to.equal(401);
    expect((await loginRequest(app.url, 'frank', 'frank-new-password')).status).to.equal(200);
  });

  it('remove deletes the user, ends their sessions and closes their streams on every worker within a second', async function () {
    const [first, second] = [await bed.startApp(), await bed.startApp()];
    const one = await openSessionStream(first!, 'grace');
    const two = await openSessionStream(second!, 'grace');
    const other = await openSessionStream(second!, 'heidi');
    const removed = await cli(['user', 'remove', 'grace']);
    expect(removed, removed.stderr).to.include({ code: 0, stdout: 'removed user grace\n' });
    const removedAt = Date.now();
    // Wait longer than the bound, so a late close fails on the bound with its measured time.
    await until(() => first!.hub.size === 0 && second!.hub.size === 1, 5000, "grace's streams to close");
    expect(Date.now() - removedAt).to.be.below(1000);
    for (const { session } of [one, two]) {
      expect((await fetch(`${first!.url}/api/session`, { headers: session.headers })).status).to.equal(401);
    }
    expect((await fetch(`${second!.url}/api/session`, { headers: other.session.headers })).status).to.equal(
      200,
    );
    const response = await loginRequest(first!.url, 'grace', 'anything-at-all');
    expect(response.status).to.equal(401);
  });

  it('creates a token printed once that publishes, lists it without the secret, and revokes it', async function () {
    const app = await bed.startApp();
    const created = await cli(['token', 'create', '--name', 'ci']);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/^pb_[A-Za-z0-9_-]{43}\n$/);
    const token = created.stdout.trim();
    const publish = () =>
      fetch(`${app.url}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'event', level: 'info', title: 'deployed' }),
      });
    const published = await publish();
    expect(published.status).to.equal(200);
    expect(publishResponseSchema.parse(await published.json()).ids).to.have.length(1);

    const listed = await cli(['token', 'list']);
    expect(listed.stdout).to.match(/^[0-9a-f]{12}\s+ci\s+publisher\s+created /m);
    expect(listed.stdout).to.not.include(token);
    expect((await cli(['token', 'create', '--name', 'ci'])).code).to.equal(1);

    expect(await cli(['token', 'revoke', 'ci'])).to.include({ code: 0, stdout: 'revoked 1 token\n' });
    const refused = await publish();
    expect(refused.status).to.equal(401);
    expect(errorResponseSchema.parse(await refused.json()).error.code).to.equal('unauthorized');
    expect((await cli(['token', 'revoke', 'ci'])).code).to.equal(1);
  });
});
