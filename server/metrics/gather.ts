// The gather protocol (docs/design.md, "Health, metrics, logs"): the scraping worker publishes a nonce on
// `<prefix>:metrics:collect`; every other live worker writes its registry as JSON into a short-lived hash
// for that nonce and says so on `<prefix>:metrics:answers`; the scraper waits for every live worker (up
// to `collectTimeoutMs`), then reads and deletes the hash.
import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import * as z from 'zod';
import type { RedisNames } from '../../shared/keys.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { parseMetricList, type MetricList } from './metric-list.ts';

/** Answers outlive a scrape that timed out by this much, then Redis drops them. */
const ANSWERS_TTL_MS = 10_000;

export interface GatherOptions {
  /** Command connection. */
  redis: RedisClient;
  /** The worker's subscriber connection (shared with the event bus). */
  subscriber: RedisClient;
  names: RedisNames;
  /** This worker's registry, sent to the scrapers that ask. */
  registry: Registry;
  log: Logger;
  workerId: string;
  /** How long a gather waits for the other workers' answers. */
  collectTimeoutMs: number;
}

export class MetricsGather {
  private readonly options: GatherOptions;
  private readonly collectChannel: string;
  private readonly answersChannel: string;
  /** Gathers of this worker waiting for answers: nonce -> workers still to answer. */
  private readonly pending = new Map<string, { waiting: Set<string>; done: () => void }>();
  private readonly onCollect = (message: string) => void this.answer(message);
  private readonly onAnswer = (message: string) => this.noteAnswer(message);

  constructor(options: GatherOptions) {
    this.options = options;
    this.collectChannel = `${options.names.prefix}:metrics:collect`;
    this.answersChannel = `${options.names.prefix}:metrics:answers`;
  }

  private answersKey(nonce: string): string {
    return this.options.names.key(`metrics:answers:${nonce}`);
  }

  /** Starts answering other workers' gathers and hearing their answers to this worker's. */
  async subscribe(): Promise<void> {
    const { subscriber } = this.options;
    await subscriber.subscribe(this.collectChannel, this.onCollect);
    await subscriber.subscribe(this.answersChannel, this.onAnswer);
  }

  /** Ends the gathers still waiting with the answers they have. */
  releaseWaiting(): void {
    for (const { done } of this.pending.values()) done();
  }

  async unsubscribe(): Promise<void> {
    const { subscriber } = this.options;
    if (subscriber.isReady) {
      await Promise.allSettled([
        subscriber.unsubscribe(this.collectChannel, this.onCollect),
        subscriber.unsubscribe(this.answersChannel, this.onAnswer),
      ]);
    }
  }

  /** Another worker scrapes: write this worker's metrics under its nonce and tell it. */
  private async answer(message: string): Promise<void> {
    const { workerId } = this.options;
    const request = z.object({ nonce: z.uuid(), from: z.string() }).safeParse(safeJson(message));
    if (!request.success || request.data.from === workerId) return;
    const { nonce } = request.data;
    try {
      const json = JSON.stringify(await this.options.registry.getMetricsAsJSON());
      const key = this.answersKey(nonce);
      await this.options.redis
        .multi()
        .hSet(key, workerId, json)
        .pExpire(key, ANSWERS_TTL_MS)
        .publish(this.answersChannel, `${nonce} ${workerId}`)
        .exec();
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not answer a metrics scrape');
    }
  }

  private noteAnswer(message: string): void {
    const [nonce, worker] = message.split(' ');
    if (nonce === undefined || worker === undefined) return;
    const request = this.pending.get(nonce);
    if (!request) return;
    request.waiting.delete(worker);
    if (request.waiting.size === 0) request.done();
  }

  /** Asks the other live workers for their metrics; resolves with who answered, by worker id. */
  async gather(others: string[]): Promise<Map<string, MetricList>> {
    const answers = new Map<string, MetricList>();
    if (others.length === 0) return answers;
    const { redis, log, workerId } = this.options;
    const nonce = randomUUID();
    const waiting = new Set(others);
    let timer: NodeJS.Timeout | undefined;
    const allAnswered = new Promise<void>((resolve) => {
      this.pending.set(nonce, { waiting, done: resolve });
      timer = setTimeout(resolve, this.options.collectTimeoutMs);
    });
    try {
      await redis.publish(this.collectChannel, JSON.stringify({ nonce, from: workerId }));
      await allAnswered;
    } finally {
      clearTimeout(timer);
      this.pending.delete(nonce);
    }
    const key = this.answersKey(nonce);
    const [stored] = await redis.multi().hGetAll(key).del(key).exec();
    const expected = new Set(others);
    for (const [worker, json] of Object.entries(z.record(z.string(), z.string()).parse(stored))) {
      if (!expected.has(worker)) continue;
      try {
        answers.set(worker, parseMetricList(json));
      } catch (error) {
        log.warn({ err: error, worker }, 'ignored an unreadable metrics answer');
      }
    }
    return answers;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
