// Where the bench's ceilings run (docs/performance.md, "The three systems"): in a session of their own by
// default, as PM2's daemon runs pulseboard's workers, so that under autogroup scheduling every system's
// server competes with the load driver on the same terms; in the bench's session only when asked.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { startSystem, type CeilingSession, type RunningSystem } from '../../bench/systems.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';

/** The session id of a process (field 6 of /proc/<pid>/stat, after the command name in parentheses). */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[3]);
}

describe('bench ceilings', function () {
  this.timeout(60_000);
  let redis: TestRedis | undefined;
  let running: RunningSystem | undefined;

  before(async function () {
    if (process.platform !== 'linux') this.skip();
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });
  after(async () => redis?.close());

  async function startCeiling(ceilingSession: CeilingSession): Promise<number[]> {
    running = await startSystem('coalescing', {
      redisUrl: redis!.url,
      prefix: `bench-session-${ceilingSession}`,
      workers: 2,
      streams: 1,
      boards: [],
      ceilingSession,
    });
    return running.workerPids();
  }

  it('runs its workers in a session of their own by default, apart from the bench and its clients', async () => {
    const pids = await startCeiling('own');
    expect(pids).to.have.length(2);
    const sessions = new Set(pids.map(sessionOf));
    expect(sessions.size).to.equal(1);
    expect([...sessions][0]).to.not.equal(sessionOf(process.pid));
  });

  it("runs its workers in the bench's session when asked", async () => {
    const pids = await startCeiling('bench');
    expect(pids.map(sessionOf)).to.deep.equal(pids.map(() => sessionOf(process.pid)));
  });
});
