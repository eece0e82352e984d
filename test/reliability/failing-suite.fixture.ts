// Run by failing-suite.test.ts in a mocha of its own, never by the suite: a `before all` hook that starts a
// redis-server in one branch of a Promise.all and fails in the other, as a browser suite does when
// Chromium is missing. The server's port goes to stdout so the test can look for it afterwards.
import { startTestRedis } from '../helpers/redis-server.ts';

describe('a suite whose before all fails after starting Redis', function () {
  before(async function () {
    await Promise.all([
      startTestRedis({ own: true }).then((redis) => process.stdout.write(`redis-port=${redis.port}\n`)),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no browser here')), 100)),
    ]);
  });

  it('never runs', function () {});
});
