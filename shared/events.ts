// The event contract (docs/design.md, "Events"): one zod schema, types inferred from it, parsed at every
// boundary. Nothing here touches Node or the DOM, so scripts, server and browser share it.
import * as z from 'zod';
import { boardSchema, DEFAULT_BOARD } from './boards.ts';

/** Largest raw input accepted from Redis, HTTP or the CLI, in bytes. */
export const MAX_RAW_BYTES = 64 * 1024;
/** Largest number of points in one `metrics` batch. */
export const MAX_BATCH_POINTS = 1000;

/** Service and metric names: 1..64 of `[A-Za-z0-9._:/-]`; no CR, LF or NUL can ever reach an SSE frame. */
export const nameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:/-]+$/, 'only letters, digits and . _ : / - are allowed');

const tsSchema = z.number().int().nonnegative().max(8_640_000_000_000_000);
export const STATUS_STATES = ['ok', 'degraded', 'down', 'maintenance'] as const;
export const EVENT_LEVELS = ['info', 'warn', 'error'] as const;

export const statusInputSchema = z.strictObject({
  type: z.literal('status'),
  board: boardSchema.optional(),
  service: nameSchema,
  state: z.enum(STATUS_STATES),
  message: z.string().max(500).optional(),
  group: nameSchema.optional(),
  ttl: z.number().int().positive().max(31_536_000).optional(),
  ts: tsSchema.optional(),
});

const metricFields = {
  name: nameSchema,
  value: z.number().refine(Number.isFinite, 'must be a finite number'),
  unit: z.string().min(1).max(16).optional(),
  ts: tsSchema.optional(),
};

export const metricInputSchema = z.strictObject({
  type: z.literal('metric'),
  board: boardSchema.optional(),
  ...metricFields,
});

export const metricsBatchInputSchema = z.strictObject({
  type: z.literal('metrics'),
  /** The board of every point in the batch. */
  board: boardSchema.optional(),
  points: z.array(z.strictObject(metricFields)).min(1).max(MAX_BATCH_POINTS),
});

export const logEventInputSchema = z.strictObject({
  type: z.literal('event'),
  board: boardSchema.optional(),
  level: z.enum(EVENT_LEVELS),
  title: z.string().min(1).max(200),
  text: z.string().max(2000).optional(),
  service: nameSchema.optional(),
  /** Marks a moment on the board's charts (docs/events.md, "Annotations"); only `true` is stored. */
  annotate: z.boolean().optional(),
  ts: tsSchema.optional(),
});

/** What a publisher may send: one event, or a batch of metric points. */
export const eventInputSchema = z.discriminatedUnion('type', [
  statusInputSchema,
  metricInputSchema,
  metricsBatchInputSchema,
  logEventInputSchema,
]);

export type StatusInput = z.infer<typeof statusInputSchema>;
export type MetricInput = z.infer<typeof metricInputSchema>;
export type MetricsBatchInput = z.infer<typeof metricsBatchInputSchema>;
export type LogEventInput = z.infer<typeof logEventInputSchema>;
export type EventInput = z.infer<typeof eventInputSchema>;
/** A single event as sequenced: a batch is split into `metric` events, one stream entry each. */
export type SingleEventInput = StatusInput | MetricInput | LogEventInput;

/** The largest value of either part of a Redis stream id (an unsigned 64-bit integer). */
const MAX_ID_PART = '18446744073709551615';

/**
 * Whether both parts of `<ms>-<seq>` (1..20 digits each) fit in 64 bits (a digit-string compare), and the
 * id is not the very last one: Redis refuses to read "after" it (`XRANGE (max-max`: invalid start ID).
 */
function fitsRedisIdRange(id: string): boolean {
  const dash = id.indexOf('-');
  const ms = id.slice(0, dash);
  const seq = id.slice(dash + 1);
  // 20 digits at most, so the only spelling of the maximum is MAX_ID_PART itself.
  const fits = (part: string) => part.length < 20 || part <= MAX_ID_PART;
  return fits(ms) && fits(seq) && !(ms === MAX_ID_PART && seq === MAX_ID_PART);
}

/**
 * Stream ids are `<ms>-<seq>` (Redis stream ids). An id beyond Redis' 64-bit range is refused here: Redis
 * would reject it, the stream would close at once and the browser would reconnect forever (docs/security.md, "Hardening").
 */
export const streamIdSchema = z
  .string()
  .regex(/^\d{1,20}-\d{1,20}$/, 'must be a stream id like 1700000000000-0')
  .refine(fitsRedisIdRange, "must be a stream id within Redis' 64-bit range");

/** Envelopes always name their board; entries logged before boards existed are on `main`. */
const envelopeExtra = { id: streamIdSchema, ts: tsSchema, board: boardSchema.default(DEFAULT_BOARD) };
export const statusEnvelopeSchema = statusInputSchema.extend(envelopeExtra);
export const metricEnvelopeSchema = metricInputSchema.extend(envelopeExtra);
export const logEventEnvelopeSchema = logEventInputSchema.extend(envelopeExtra);

/** What workers fan out and browsers receive: a sequenced event with its global id. */
export const envelopeSchema = z.discriminatedUnion('type', [
  statusEnvelopeSchema,
  metricEnvelopeSchema,
  logEventEnvelopeSchema,
]);
export type StatusEnvelope = z.infer<typeof statusEnvelopeSchema>;
export type MetricEnvelope = z.infer<typeof metricEnvelopeSchema>;
export type LogEventEnvelope = z.infer<typeof logEventEnvelopeSchema>;
export type Envelope = z.infer<typeof envelopeSchema>;
export type EnvelopeType = Envelope['type'];

/** Why an input was rejected; used as the `reason` label of the rejection metric. */
export type RejectReason = 'too_large' | 'bad_json' | 'unknown_type' | 'invalid' | 'unknown_board';

export type ParseResult<T> =
  { ok: true; value: T } | { ok: false; reason: RejectReason; message: string; field?: string };

/** UTF-8 length without TextEncoder or Buffer, which shared/ cannot assume. */
function byteLength(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

function describeIssues(error: z.ZodError): { message: string; field?: string } {
  const issue = error.issues[0];
  if (!issue) return { message: 'invalid input' };
  // An unknown field is named itself, so the caller learns which one to remove.
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    const field = [...issue.path.map(String), issue.keys[0]].join('.');
    return { field, message: `${field}: unknown field` };
  }
  const field = issue.path.map(String).join('.');
  return field ? { field, message: `${field}: ${issue.message}` } : { message: issue.message };
}

/** Validates an already-decoded value against the input schema. */
export function parseEventInput(value: unknown): ParseResult<EventInput> {
  const parsed = eventInputSchema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const known = ['status', 'metric', 'metrics', 'event'];
  if (typeof type !== 'string' || !known.includes(type)) {
    return {
      ok: false,
      reason: 'unknown_type',
      field: 'type',
      message: `type: must be one of ${known.join(', ')}`,
    };
  }
  return { ok: false, reason: 'invalid', ...describeIssues(parsed.error) };
}

/** Validates raw text (a Redis message, a request body, a CLI argument): size, JSON, then schema. */
export function parseRawEventInput(raw: string): ParseResult<EventInput> {
  if (raw.length > MAX_RAW_BYTES || byteLength(raw) > MAX_RAW_BYTES) {
    return { ok: false, reason: 'too_large', message: `input is larger than ${MAX_RAW_BYTES} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'bad_json', message: 'input is not valid JSON' };
  }
  return parseEventInput(value);
}

/** Validates an envelope coming back from Redis (defence in depth before fan-out). */
export function parseEnvelope(raw: string): ParseResult<Envelope> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'bad_json', message: 'envelope is not valid JSON' };
  }
  const parsed = envelopeSchema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, reason: 'invalid', ...describeIssues(parsed.error) };
}

/** Splits a batch into single events, the unit of sequencing and of SSE delivery. */
export function toSingleEvents(input: EventInput): SingleEventInput[] {
  if (input.type !== 'metrics') return [input];
  const { board } = input;
  return input.points.map((point) => ({
    type: 'metric' as const,
    ...(board === undefined ? {} : { board }),
    ...point,
  }));
}

/** The board an input or envelope belongs to: its own, or `main`. */
export function boardOf(event: { board?: string | undefined }): string {
  return event.board ?? DEFAULT_BOARD;
}

/** The topic an envelope is filtered by: `status:<service>`, `metric:<name>`, `event:<level>`. */
export function topicOf(event: SingleEventInput): string {
  switch (event.type) {
    case 'status':
      return `status:${event.service}`;
    case 'metric':
      return `metric:${event.name}`;
    case 'event':
      return `event:${event.level}`;
  }
}

/** Compares two decimal strings by value: by length, then by text; BigInt only for leading zeros. */
function compareDecimal(a: string, b: string): number {
  if (a.length === b.length) return a === b ? 0 : a < b ? -1 : 1;
  if ((a.length > 1 && a[0] === '0') || (b.length > 1 && b[0] === '0')) {
    const difference = BigInt(a) - BigInt(b);
    return difference === 0n ? 0 : difference < 0n ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/**
 * Compares two stream ids numerically: negative when a < b. It runs for every connection on every
 * fanned-out event, so it compares digit strings rather than allocating BigInts (about 6x faster).
 */
export function compareStreamIds(a: string, b: string): number {
  if (a === b) return 0;
  const aDash = a.indexOf('-');
  const bDash = b.indexOf('-');
  const aMs = aDash === -1 ? a : a.slice(0, aDash);
  const bMs = bDash === -1 ? b : b.slice(0, bDash);
  const aSeq = aDash === -1 ? '0' : a.slice(aDash + 1);
  const bSeq = bDash === -1 ? '0' : b.slice(bDash + 1);
  return compareDecimal(aMs, bMs) || compareDecimal(aSeq, bSeq);
}
