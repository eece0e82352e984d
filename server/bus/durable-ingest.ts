// Durable input (docs/events.md, "Durable input"): `XADD {<prefix>}:ingest-stream * event '<json>'`.
// Workers consume the stream as one consumer group, each worker its own consumer. Each board's part of an
// entry is sequenced by one script call on the board's slot that also leaves a dedupe record of the entry
// id there, so a part is sequenced once even when the entry is handled again (claimed away from a paused
// consumer, or after a crash before the acknowledgement). Then WAIT (the parts are on a replica), then
// XACK + XDEL in the input's slot: exactly once, per board (docs/events.md, "Atomic per board").
// Entries of a consumer that stopped answering are claimed after `claimIdleMs`.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  boardOf,
  parseRawEventInput,
  toSingleEvents,
  type RejectReason,
  type SingleEventInput,
} from '../../shared/events.ts';
import { INGEST_STREAM_FIELD } from '../../shared/keys.ts';
import {
  createScriptRunner,
  scriptArgs,
  tsRejectedMessage,
  unknownBoardMessage,
  type Sequencer,
} from '../../shared/publisher.ts';
import { DURABLE_INGEST_SCRIPT } from '../../shared/sequence-script.ts';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { itemOutcomes, partArgs, partsByBoard, type ItemOutcome } from './board-parts.ts';
import type { IngestReport } from './ingest-report.ts';

/** The consumer group every worker of an installation joins. */
export const INGEST_GROUP = 'pulseboard';
/** The entry field holding the event JSON. */
export const DURABLE_FIELD = INGEST_STREAM_FIELD;

const READ_COUNT = 100;
const BLOCK_MS = 2000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;
/** Consumers with nothing pending and idle this long are removed from the group (restarted workers). */
const CONSUMER_FORGET_MS = 60 * 60 * 1000;

export interface DurableIngestOptions {
  /** Command connection: scripts, claims and group housekeeping. */
  redis: RedisClient;
  sequencer: Sequencer;
  /** Where counts and lags go (this worker's metrics). */
  report: IngestReport;
  log: Logger;
  /** Entries pending this long for another consumer are claimed by this one. Default 10000 ms. */
  claimIdleMs?: number;
  /** Lifetime of an entry's dedupe records (longer than any entry stays pending). Default 24 h. */
  dedupeTtlMs?: number;
}

interface Entry {
  id: string;
  message: Record<string, string>;
}

type Prepared =
  | { id: string; events: SingleEventInput[] }
  | { id: string; reject: { reason: RejectReason; message: string } };

function prepare(entry: Entry): Prepared {
  const fields = Object.keys(entry.message);
  const raw = entry.message[DURABLE_FIELD];
  if (raw === undefined || fields.length !== 1) {
    const message = `an entry has exactly one field, "${DURABLE_FIELD}", holding the JSON`;
    return { id: entry.id, reject: { reason: 'invalid', message } };
  }
  const parsed = parseRawEventInput(raw);
  if (!parsed.ok) return { id: entry.id, reject: { reason: parsed.reason, message: parsed.message } };
  return { id: entry.id, events: toSingleEvents(parsed.value) };
}

function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export class DurableIngest {
  readonly consumer = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly options: DurableIngestOptions;
  private readonly warn: (key: string, fields: Record<string, unknown>, message: string) => void;
  private readonly run: (args: readonly string[]) => Promise<unknown>;
  private readonly claimIdleMs: number;
  /** Own connection: XREADGROUP BLOCK holds it. */
  private readonly reader: RedisClient;
  private reading: Promise<void> | undefined;
  private claimTimer: NodeJS.Timeout | undefined;
  private claiming: Promise<void> | undefined;
  private lastForget = 0;
  private stopped = false;

  constructor(options: DurableIngestOptions) {
    this.options = options;
    this.warn = createRateLimitedWarn(options.log);
    this.run = createScriptRunner(options.redis, DURABLE_INGEST_SCRIPT);
    this.claimIdleMs = options.claimIdleMs ?? 10_000;
    this.reader = options.redis.duplicate();
    this.reader.on('error', () => undefined); // logged through the command connection's listener
  }

  private get stream(): string {
    return this.options.sequencer.names.ingestStream;
  }

  async start(): Promise<void> {
    await this.reader.connect();
    await this.ensureGroup();
    this.reading = this.readLoop();
    this.claimTimer = setInterval(() => {
      this.claiming ??= this.claimIdle().finally(() => (this.claiming = undefined));
    }, this.claimIdleMs / 2);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.claimTimer);
    // A blocked XREADGROUP cannot be cut short politely. Entries it had just read stay pending for this
    // consumer and are claimed by another worker after claimIdleMs: delayed, not lost.
    if (this.reader.isOpen) this.reader.destroy();
    await Promise.allSettled([this.reading, this.claiming]);
  }

  /** Creates the group from id 0 (MKSTREAM), so entries added before any worker ran are consumed. */
  private async ensureGroup(): Promise<void> {
    try {
      await this.options.redis.sendCommand(['XGROUP', 'CREATE', this.stream, INGEST_GROUP, '0', 'MKSTREAM']);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error;
    }
  }

  private async readLoop(): Promise<void> {
    // '0' reads this consumer's own pending entries (after a failed read); '>' reads new ones.
    let cursor = '0';
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        const reply = await this.reader.xReadGroup(
          INGEST_GROUP,
          this.consumer,
          { key: this.stream, id: cursor },
          { COUNT: READ_COUNT, BLOCK: BLOCK_MS },
        );
        const entries = ((reply as { messages: (Entry | null)[] }[] | null)?.[0]?.messages ?? []).filter(
          (entry): entry is Entry => entry !== null,
        );
        if (cursor === '0' && entries.length === 0) cursor = '>';
        if (entries.length > 0) await this.handle(entries);
        delay = RETRY_MIN_MS;
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof Error && error.message.startsWith('NOGROUP')) {
          // The stream (and its group) was deleted: start again from an empty one.
          await this.ensureGroup().catch(() => undefined);
        } else {
          this.options.report.retry('durable');
          this.warn('durable:read', { err: error }, 'could not read the durable input; retrying');
        }
        cursor = '0';
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Claims entries another consumer left pending for longer than claimIdleMs, and handles them. */
  private async claimIdle(): Promise<void> {
    const { redis, report } = this.options;
    try {
      let start = '0-0';
      do {
        const reply = await redis.xAutoClaim(
          this.stream,
          INGEST_GROUP,
          this.consumer,
          this.claimIdleMs,
          start,
          { COUNT: READ_COUNT },
        );
        const entries = reply.messages.filter((entry): entry is Entry => entry !== null);
        report.claims(entries.length);
        if (entries.length > 0) await this.handle(entries);
        start = reply.nextId;
      } while (start !== '0-0' && !this.stopped);
      if (Date.now() - this.lastForget > CONSUMER_FORGET_MS / 4) await this.forgetIdleConsumers();
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('NOGROUP')) return;
      this.warn('durable:claim', { err: error }, 'could not claim idle durable-input entries');
    }
  }

  /** Restarted workers leave consumers behind; ones with nothing pending are removed after an hour. */
  private async forgetIdleConsumers(): Promise<void> {
    this.lastForget = Date.now();
    const { redis } = this.options;
    for (const consumer of await redis.xInfoConsumers(this.stream, INGEST_GROUP)) {
      if (consumer.pending === 0 && consumer.idle > CONSUMER_FORGET_MS && consumer.name !== this.consumer)
        await redis.xGroupDelConsumer(this.stream, INGEST_GROUP, consumer.name);
    }
  }

  /** Sequences entries in order, retrying until Redis answers (they stay pending meanwhile). */
  private async handle(entries: Entry[]): Promise<void> {
    const { report } = this.options;
    const prepared = entries.map(prepare);
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        this.account(prepared, await this.sequenceEntries(prepared));
        return;
      } catch (error) {
        if (this.stopped) return;
        report.retry('durable');
        this.warn('durable:redis', { err: error }, 'could not sequence durable input; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * One attempt: each board's part (deduplicated by entry id in the board's slot), WAIT for the replicas
   * of the boards written, then XACK + XDEL. A crash anywhere in between re-sequences nothing.
   */
  private async sequenceEntries(prepared: Prepared[]): Promise<ItemOutcome[]> {
    const { sequencer, redis } = this.options;
    const parts = partsByBoard(prepared.map((entry) => ('events' in entry ? entry.events : undefined)));
    const ttl = String(this.options.dedupeTtlMs ?? 24 * 60 * 60 * 1000);
    const replies = await Promise.all(
      [...parts].map(async ([board, boardParts]) => {
        const reply = await this.run(
          scriptArgs(sequencer.boardScriptKeys(board), [
            ...sequencer.commonArgs(board),
            ttl,
            board,
            ...boardParts.flatMap((part) => partArgs(prepared[part.item]?.id ?? '', part)),
          ]),
        );
        if (!Array.isArray(reply)) throw new Error('durable ingest script returned an unexpected reply');
        return { parts: boardParts, reply: reply as unknown[] };
      }),
    );
    await sequencer.waitForReplicas([...parts.keys()]);
    const ids = prepared.map((entry) => entry.id);
    await redis.xAck(this.stream, INGEST_GROUP, ids);
    await redis.xDel(this.stream, ids);
    return itemOutcomes(prepared.length, replies);
  }

  private account(prepared: Prepared[], outcomes: ItemOutcome[]): void {
    const { report, sequencer } = this.options;
    const now = Date.now();
    prepared.forEach((entry, index) => {
      const outcome = outcomes[index];
      if (!outcome) return;
      if (!outcome.handled) return;
      if ('reject' in entry || outcome.refused !== undefined) {
        const { reason, message } =
          'reject' in entry
            ? entry.reject
            : outcome.refused === 'unknown_board'
              ? {
                  reason: 'unknown_board' as const,
                  message: unknownBoardMessage([...new Set(entry.events.map(boardOf))].join(', ')),
                }
              : { reason: 'invalid' as const, message: tsRejectedMessage('ts', sequencer.maxFutureMs) };
        report.rejected(reason, 'durable');
        this.warn(
          `durable:${reason}`,
          { reason: message, entry: entry.id },
          'rejected durable-input entry (acknowledged)',
        );
      }
      for (const event of outcome.sequenced) report.ingested(event.type, 'durable', boardOf(event));
      if (outcome.sequenced.length > 0) report.lag('durable', Math.max(0, now - idMs(entry.id)) / 1000);
    });
  }
}
