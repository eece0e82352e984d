// A suite whose `before all` hook fails must not leave servers behind (docs/design.md, "Tests"): the run
// fails, and no redis-server it started outlives it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { listening } from '../helpers/leftovers.ts';
import { ROOT } from '../ops/pm2-cluster.ts';

function runMocha(file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/mocha/bin/mocha.js'), file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('a suite whose before all hook fails', function () {
  this.timeout(60_000);

  it('fails the run and leaves no redis-server running', async function () {
    const { code, output } = await runMocha('test/reliability/failing-suite.fixture.ts');
    expect(code, output).to.not.equal(0);
    expect(output).to.include('"before all" hook');
    const port = Number(/redis-port=(\d+)/.exec(output)?.[1]);
    expect(port, output).to.be.greaterThan(0);
    expect(await listening(port), `a redis-server still listens on ${port}`).to.equal(false);
  });
});
