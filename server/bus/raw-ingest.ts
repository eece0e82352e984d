// Raw ingest: JSON published by any Redis client on `<prefix>:ingest` is validated and sequenced by the
// workers (exactly one copy per message across workers, by a dedupe key on the raw bytes).
import { createHash } from 'node:crypto';
import { parseRawEventInput, toSingleEvents } from '../../shared/events.ts';
import type { Sequencer } from '../../shared/publisher.ts';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { RedisClient } from '../redis.ts';

export interface RawIngestOptions {
  /** Connection used only for SUBSCRIBE (shared with the event bus). */
  subscriber: RedisClient;
  sequencer: Sequencer;
  metrics: Metrics;
  log: Logger;
  dedupeWindowMs: number;
}

export class RawIngest {
  private readonly options: RawIngestOptions;
  private readonly warn: (key: string, fields: Record<string, unknown>, message: string) => void;

  constructor(options: RawIngestOptions) {
    this.options = options;
    this.warn = createRateLimitedWarn(options.log);
  }

  async start(): Promise<void> {
    const { subscriber, sequencer } = this.options;
    await subscriber.subscribe(sequencer.names.ingestChannel, (message) => void this.onIngest(message));
  }

  private async onIngest(raw: string): Promise<void> {
    const { metrics, sequencer, dedupeWindowMs } = this.options;
    const parsed = parseRawEventInput(raw);
    if (!parsed.ok) {
      metrics.eventsRejected.inc({ reason: parsed.reason, source: 'ingest' });
      this.warn(
        `ingest:${parsed.reason}`,
        { reason: parsed.message, bytes: raw.length },
        'rejected raw input',
      );
      return;
    }
    const dedupeKey = sequencer.names.dedupePrefix + createHash('sha256').update(raw).digest('hex');
    try {
      const events = toSingleEvents(parsed.value);
      const ids = await sequencer.sequence(events, { dedupeKey, dedupeWindowMs });
      for (const event of ids.length > 0 ? events : [])
        metrics.eventsIngested.inc({ type: event.type, source: 'ingest' });
    } catch (error) {
      this.warn('ingest:redis', { err: error }, 'could not sequence raw input');
    }
  }
}
