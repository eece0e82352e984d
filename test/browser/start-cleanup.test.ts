// A browser suite whose start fails leaves nothing running (docs/design.md, "Tests"): when Chromium cannot
// start, the environment started beside it (redis-server, worker, Redis client) is stopped; when the
// environment cannot start, the Chromium launched beside it is closed. Checked in this process, right
// after the failed start (test/helpers/leftovers.ts).
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { childPids, listening } from '../helpers/leftovers.ts';
import { CHROMIUM_ARGS, launchChromium } from './helpers/chromium.ts';
import {
  startEnvironment,
  startEnvironmentAndBrowser,
  type BrowserEnvironment,
} from './helpers/environment.ts';

describe('a browser suite whose start fails', function () {
  this.timeout(60_000);

  it('stops the environment it started when Chromium cannot start: no redis-server, worker or child process left', async function () {
    const before = childPids();
    let env: BrowserEnvironment | undefined;
    let app: Pulseboard | undefined;
    const failure = await startEnvironmentAndBrowser(
      {},
      {
        async environment(vars) {
          env = await startEnvironment(vars);
          app = await env.startApp();
          return env;
        },
        // A real launch of a browser that is not there, as on a machine without Chromium.
        browser: () =>
          chromium.launch({ executablePath: '/nonexistent/chromium', headless: true, args: CHROMIUM_ARGS }),
      },
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failure)).to.match(/nonexistent\/chromium/);
    expect(env, 'the environment started before the helper gave up').to.not.equal(undefined);
    expect(await listening(env!.redis.port), 'redis-server still listening').to.equal(false);
    expect(await listening(app!.port), 'worker still listening').to.equal(false);
    expect(env!.client.isOpen, 'Redis client still open').to.equal(false);
    expect(childPids().filter((pid) => !before.includes(pid))).to.deep.equal([]);
  });

  it('closes the Chromium it launched when the environment cannot start: no browser process left', async function () {
    const before = childPids();
    let browser: Browser | undefined;
    const failure = await startEnvironmentAndBrowser(
      // A variable the server refuses: the environment fails at once, Chromium is still starting.
      { SSE_RETRY_MS: 'soon' },
      {
        environment: startEnvironment,
        browser: async () => (browser = await launchChromium()),
      },
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failure)).to.match(/SSE_RETRY_MS/);
    expect(browser, 'Chromium launched before the helper gave up').to.not.equal(undefined);
    expect(browser!.isConnected(), 'Chromium still connected').to.equal(false);
    expect(childPids().filter((pid) => !before.includes(pid))).to.deep.equal([]);
  });
});
