// `POST /api/publish` (docs/design.md, "Publish paths and sequencing"): `Authorization: Bearer <API token>`,
// one event as JSON (the shared schema: a status, metric, metrics batch or log event), at most 64 KiB.
// Validated before sequencing, so nothing invalid gets an id; answers `{ids}`. `board` in the body picks
// the board (default `main`; it must exist); a token limited to boards gets 403 `forbidden_board` for any
// other, and nothing is sequenced (docs/security.md, "Boards and access"). Acknowledged means on a replica
// when the primary has one (WAIT, docs/events.md): else 503 `replication_timeout` with Retry-After.
import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import type { Counter } from 'prom-client';
import { boardOf, MAX_RAW_BYTES, parseRawEventInput, toSingleEvents } from '../../shared/events.ts';
import { ReplicationTimeout, TsRejected, UnknownBoard, type Sequencer } from '../../shared/publisher.ts';
import { tokenAllowsBoard, type TokenStore } from '../auth/tokens.ts';
import { AppError, PayloadTooLargeError, ValidationError } from '../http/errors.ts';
import { isRedisUnavailable, mayHaveBeenApplied, REDIS_RETRY_AFTER_S } from '../redis.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';

const readRawBody = bodyParser({
  enableTypes: ['text'],
  extendTypes: { text: ['application/json'] },
  textLimit: MAX_RAW_BYTES,
});

/** Seconds a publisher is told to wait (Retry-After) when no replica took the write in time. */
const REPLICATION_RETRY_AFTER_S = 2;

function unauthorized(message: string): AppError {
  return new AppError(401, 'unauthorized', message, {
    headers: { 'WWW-Authenticate': 'Bearer realm="pulseboard"' },
  });
}

function bearerToken(ctx: Context): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('Authorization'));
  return match?.[1];
}

export interface PublishRouteOptions {
  tokens: TokenStore;
  sequencer: Sequencer;
  metrics: Metrics;
  /** Events sequenced, by board (`pulseboard_board_events_total`, server/bus/ingest-metrics.ts). */
  boardEvents?: Counter<'board'>;
}

export function publishRoute(options: PublishRouteOptions) {
  const { tokens, sequencer, metrics } = options;
  return async function publish(ctx: Context): Promise<void> {
    const token = bearerToken(ctx);
    if (!token) throw unauthorized('an API token is required (Authorization: Bearer <token>)');
    const record = await tokens.verify(token);
    if (!record || record.role !== 'publisher') throw unauthorized('invalid or revoked API token');

    if (!ctx.is('application/json')) {
      throw new AppError(415, 'unsupported_media_type', 'send the event as Content-Type: application/json');
    }
    try {
      await readRawBody(ctx, async () => undefined);
    } catch (error) {
      if (error instanceof Error && 'status' in error && error.status === 413) {
        metrics.eventsRejected.inc({ reason: 'too_large', source: 'http' });
        throw new PayloadTooLargeError(`request body is larger than ${MAX_RAW_BYTES} bytes`);
      }
      throw error;
    }
    const raw = typeof ctx.request.body === 'string' ? ctx.request.body : '';
    const parsed = parseRawEventInput(raw);
    if (!parsed.ok) {
      metrics.eventsRejected.inc({ reason: parsed.reason, source: 'http' });
      throw new ValidationError(parsed.message, parsed.field);
    }
    const board = boardOf(parsed.value);
    if (!tokenAllowsBoard(record, board))
      throw new AppError(403, 'forbidden_board', `this token may not publish to board ${board}`, {
        field: 'board',
      });
    const events = toSingleEvents(parsed.value);
    let ids: string[];
    try {
      ids = await sequencer.sequence(events);
    } catch (error) {
      if (error instanceof UnknownBoard) {
        metrics.eventsRejected.inc({ reason: 'unknown_board', source: 'http' });
        throw new AppError(400, 'unknown_board', error.message, { field: 'board' });
      }
      if (error instanceof ReplicationTimeout) {
        // Written but not on a replica in time (docs/events.md, "Acknowledged means on a replica"): not
        // acknowledged. A retry may sequence the event twice; the client decides.
        throw new AppError(503, 'replication_timeout', error.message, {
          expose: true,
          headers: { 'Retry-After': String(REPLICATION_RETRY_AFTER_S) },
        });
      }
      if (isRedisUnavailable(error) && mayHaveBeenApplied(error)) {
        // The script may have run (its reply was late, or the connection dropped under it): like
        // replication_timeout, not acknowledged, and a retry may sequence the event twice (docs/events.md).
        throw new AppError(
          503,
          'redis_unavailable',
          'the data store did not answer in time; the event may have been applied, so a retry may sequence it twice',
          { expose: true, headers: { 'Retry-After': String(REDIS_RETRY_AFTER_S) } },
        );
      }
      if (!(error instanceof TsRejected)) throw error;
      // `ts` is bounded against Redis' clock, which only the script reads (docs/events.md, "Timestamps").
      metrics.eventsRejected.inc({ reason: 'invalid', source: 'http' });
      const named = new TsRejected(error.index, parsed.value, sequencer.maxFutureMs);
      throw new ValidationError(named.message, named.field);
    }
    for (const event of events) metrics.eventsIngested.inc({ type: event.type, source: 'http' });
    options.boardEvents?.inc({ board }, events.length);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ids };
  };
}
