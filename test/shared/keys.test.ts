// The Redis layout of an installation (docs/design.md, "Redis keys"), written out as literal strings for
// PULSEBOARD_PREFIX=pb. Redis data outlives releases and other programs (redis-cli scripts, dashboards,
// alert rules) use these names: a change here is a migration, not a refactoring.
import { expect } from 'chai';
import {
  authNames,
  boardKeys,
  INGEST_STREAM_FIELD,
  metricsNames,
  redisNames,
  sessionNames,
  throttleNames,
} from '../../shared/keys.ts';

describe('Redis names (prefix pb)', function () {
  it('event path: keys under {pb}, channels plain', function () {
    const { key, ...names } = redisNames('pb');
    expect(names).to.deep.equal({
      prefix: 'pb',
      log: '{pb}:log',
      status: '{pb}:status',
      metricIndex: '{pb}:metrics',
      metricPrefix: '{pb}:m:',
      ingestPositionPrefix: '{pb}:ingest:pos:',
      ingestStream: '{pb}:ingest-stream',
      ingestChannel: 'pb:ingest',
      eventsChannel: 'pb:events',
      controlChannel: 'pb:control',
      boards: '{pb}:boards',
    });
    expect(key('anything')).to.equal('{pb}:anything');
    expect(INGEST_STREAM_FIELD).to.equal('event');
  });

  it('the main board keeps the keys of an installation from before boards; another board has its own tag (keys and shard channel)', function () {
    expect(boardKeys('pb', 'main')).to.deep.equal({
      board: 'main',
      tag: '{pb}',
      log: '{pb}:log',
      status: '{pb}:status',
      metricIndex: '{pb}:metrics',
      metricPrefix: '{pb}:m:',
      recentEvents: '{pb}:events',
      meta: '{pb}:board',
      historyPrefix: '{pb}:h:',
      annotations: '{pb}:annotations',
      channel: '{pb}:live',
      ingestPositionPrefix: '{pb}:ingest:part:',
      durableDonePrefix: '{pb}:ingest:done:',
      publicStatus: '{pb}:public',
    });
    expect(boardKeys('pb', 'ops')).to.deep.equal({
      board: 'ops',
      tag: '{pb:ops}',
      log: '{pb:ops}:log',
      status: '{pb:ops}:status',
      metricIndex: '{pb:ops}:metrics',
      metricPrefix: '{pb:ops}:m:',
      recentEvents: '{pb:ops}:events',
      meta: '{pb:ops}:board',
      historyPrefix: '{pb:ops}:h:',
      annotations: '{pb:ops}:annotations',
      channel: '{pb:ops}:live',
      ingestPositionPrefix: '{pb:ops}:ingest:part:',
      durableDonePrefix: '{pb:ops}:ingest:done:',
      publicStatus: '{pb:ops}:public',
    });
  });

  it('sessions and the cookie signing key', function () {
    const { session, ...names } = sessionNames('pb');
    expect(names).to.deep.equal({ signingKeys: '{pb}:session-keys', sessionPattern: '{pb}:session:*' });
    expect(session('9f86d081')).to.equal('{pb}:session:9f86d081');
  });

  it('users, API tokens and the per-session stream quota', function () {
    const { streams, ...names } = authNames('pb');
    expect(names).to.deep.equal({ users: '{pb}:users', apiTokens: '{pb}:api-tokens' });
    expect(streams('9f86d081')).to.equal('{pb}:streams:9f86d081');
  });

  it('login throttle counters (rate-limiter-flexible appends :<key>)', function () {
    expect(throttleNames('pb')).to.deep.equal({
      failuresByIp: '{pb}:login-fail:ip',
      failuresByUserIp: '{pb}:login-fail:user-ip',
      loginsByUser: '{pb}:login-ok:user',
    });
  });

  it('cluster-wide metrics', function () {
    const { answers, ...names } = metricsNames('pb');
    expect(names).to.deep.equal({
      workers: '{pb}:workers',
      retired: '{pb}:metrics:retired',
      collectChannel: 'pb:metrics:collect',
      answersChannel: 'pb:metrics:answers',
    });
    expect(answers('n1')).to.equal('{pb}:metrics:answers:n1');
  });

  it('the default prefix is pulseboard', function () {
    expect(redisNames().log).to.equal('{pulseboard}:log');
    expect(sessionNames().signingKeys).to.equal('{pulseboard}:session-keys');
    expect(throttleNames().failuresByIp).to.equal('{pulseboard}:login-fail:ip');
    expect(metricsNames().collectChannel).to.equal('pulseboard:metrics:collect');
  });
});
