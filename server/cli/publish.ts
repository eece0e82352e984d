// `pulseboard publish status|metric|event|json …`: builds an event from arguments, validates it with the
// shared schema and sequences it through the publisher (docs/events.md, "Publishing"). Prints the new id;
// with `--durable`, adds it to the durable input stream instead and prints the entry id. `--board <board>`
// publishes to that board (it must exist; docs/events.md, "Boards").
// Exit codes: 0 published, 2 bad input (the message names the field), 1 Redis or configuration trouble.
import type { Command } from 'commander';
import { parseEventInput, parseRawEventInput, toSingleEvents, type EventInput } from '../../shared/events.ts';
import { boardSchema } from '../../shared/boards.ts';
import { boardKeys, INGEST_STREAM_FIELD, redisNames } from '../../shared/keys.ts';
import {
  createPublisher,
  EventValidationError,
  TsRejected,
  UnknownBoard,
  type RedisCommandSender,
} from '../../shared/publisher.ts';
import { createReplicaWait } from '../../shared/replica-wait.ts';
import type { Config } from '../config.ts';
import { CliError, EXIT_BAD_INPUT, exitOnUsageError } from './errors.ts';
import { cliConfig, withInstallation } from './installation.ts';

/** A bad argument: reported as `pulseboard publish: <message>` with exit code 2. */
function badInput(message: string): CliError {
  return new CliError(message, EXIT_BAD_INPUT);
}

/** Numbers as a person types them (`12.5`, `-3`, `1e3`); anything else is named, not turned into NaN. */
function toNumber(field: string, text: string, integer = false): number {
  const pattern = integer ? /^[+-]?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  if (!pattern.test(text.trim())) {
    throw badInput(`${field}: "${text}" is not ${integer ? 'a whole number' : 'a number'}`);
  }
  const value = Number(text);
  if (!Number.isFinite(value)) throw badInput(`${field}: "${text}" is not a finite number`);
  return value;
}

/** Drops options that were not given, so the schema sees exactly what the user typed. */
function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function validate(input: unknown): EventInput {
  const parsed = parseEventInput(input);
  if (!parsed.ok) throw badInput(parsed.message);
  return parsed.value;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** Milliseconds by Redis' clock, the one `ts` is bounded against. */
async function redisNow(redis: RedisCommandSender): Promise<number> {
  const [seconds, micros] = (await redis.sendCommand(['TIME'])) as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** XADDs the event to the durable input; a worker sequences it (docs/events.md, "Durable input"). */
async function addDurable(
  redis: RedisCommandSender,
  input: EventInput,
  config: Pick<
    Config,
    'PULSEBOARD_PREFIX' | 'TS_MAX_FUTURE_MS' | 'REDIS_WAIT_REPLICAS' | 'REDIS_WAIT_TIMEOUT_MS'
  >,
): Promise<string> {
  // Checked here too, so the user hears about it rather than a worker's log.
  const { board } = input;
  if (board !== undefined && board !== 'main') {
    const exists = await redis.sendCommand(['EXISTS', boardKeys(config.PULSEBOARD_PREFIX, board).meta]);
    if (exists !== 1) throw new UnknownBoard(0, board);
  }
  const now = await redisNow(redis);
  toSingleEvents(input).forEach((event, index) => {
    if (event.ts !== undefined && event.ts > now + config.TS_MAX_FUTURE_MS)
      throw new TsRejected(index, input, config.TS_MAX_FUTURE_MS);
  });
  const stream = redisNames(config.PULSEBOARD_PREFIX).ingestStream;
  const id = String(
    await redis.sendCommand(['XADD', stream, '*', INGEST_STREAM_FIELD, JSON.stringify(input)]),
  );
  // The entry is acknowledged (its id printed) once on a replica (docs/events.md).
  await createReplicaWait(redis, {
    replicas: config.REDIS_WAIT_REPLICAS,
    timeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  })([stream]);
  return id;
}

/** The options of `publish` itself, shared by every subcommand (read before the subcommand's action). */
interface PublishOptions {
  durable: boolean;
  board?: string;
}

/** Puts the event on `--board`; JSON naming another board is a contradiction, not a choice. */
function onBoard(input: EventInput, board: string | undefined): EventInput {
  if (board === undefined) return input;
  const parsed = boardSchema.safeParse(board);
  if (!parsed.success) throw badInput(`board: "${board}" must be 1..64 of a-z 0-9 -`);
  if (input.board !== undefined && input.board !== parsed.data)
    throw badInput(`board: the event names board ${input.board} but --board is ${parsed.data}`);
  return validate({ ...input, board: parsed.data });
}

/** Validates first (no Redis needed to be told an argument is wrong), then connects and sequences. */
async function run(shared: PublishOptions, build: () => EventInput | Promise<EventInput>): Promise<void> {
  const input = onBoard(await build(), shared.board);
  const config = cliConfig();
  const output = await withInstallation(async (redis) => {
    try {
      if (shared.durable) return [await addDurable(redis, input, config)];
      const publisher = createPublisher(redis, {
        prefix: config.PULSEBOARD_PREFIX,
        historyMax: config.HISTORY_MAX,
        metricHistoryMax: config.METRIC_HISTORY_MAX,
        maxFutureMs: config.TS_MAX_FUTURE_MS,
        waitReplicas: config.REDIS_WAIT_REPLICAS,
        waitTimeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
      });
      return await publisher.publish(input);
    } catch (error) {
      if (error instanceof EventValidationError) throw badInput(error.message);
      throw new CliError(`publishing failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }, config);
  process.stdout.write(`${output.join('\n')}\n`);
}

export function registerPublish(program: Command): void {
  const shared: PublishOptions = { durable: false };
  const publish = program
    .command('publish')
    .description(
      'publish an event to every open dashboard (REDIS_URL, PULSEBOARD_PREFIX from the environment); prints its id',
    )
    .option(
      '--durable',
      'add the event to the durable input stream (sequenced by a worker, even one started later); prints the entry id',
    )
    .option('--board <board>', 'the board to publish to (default main); it must exist')
    .hook('preAction', (command) => {
      const options = command.opts<{ durable?: boolean; board?: string }>();
      shared.durable = options.durable === true;
      shared.board = options.board;
    })
    .exitOverride(exitOnUsageError)
    .showHelpAfterError('(add --help for usage)');

  publish
    .command('status')
    .description('set the status of a service tile')
    .argument('<service>', 'service name: 1-64 of A-Z a-z 0-9 . _ : / -')
    .argument('<state>', 'ok | degraded | down | maintenance')
    .option('--message <text>', 'short explanation shown on the tile (at most 500 characters)')
    .option('--group <name>', 'group the tile belongs to')
    .option('--ttl <seconds>', 'seconds until the tile shows as stale unless refreshed')
    .option(
      '--ts <ms>',
      'event time in epoch ms (default: now); an older status does not replace a newer one',
    )
    .action((service: string, state: string, options: Record<string, string | undefined>) =>
      run(shared, () =>
        validate(
          defined({
            type: 'status',
            service,
            state,
            message: options.message,
            group: options.group,
            ttl: options.ttl === undefined ? undefined : toNumber('ttl', options.ttl, true),
            ts: options.ts === undefined ? undefined : toNumber('ts', options.ts, true),
          }),
        ),
      ),
    );

  publish
    .command('metric')
    .description('add a point to a metric chart')
    .argument('<name>', 'metric name: 1-64 of A-Z a-z 0-9 . _ : / -')
    .argument('<value>', 'a finite number, e.g. 12.5')
    .option('--unit <unit>', 'unit shown on the chart, e.g. ms (at most 16 characters)')
    .option('--ts <ms>', 'point time in epoch ms (default: now)')
    .action((name: string, value: string, options: Record<string, string | undefined>) =>
      run(shared, () =>
        validate(
          defined({
            type: 'metric',
            name,
            value: toNumber('value', value),
            unit: options.unit,
            ts: options.ts === undefined ? undefined : toNumber('ts', options.ts, true),
          }),
        ),
      ),
    );

  publish
    .command('event')
    .description('add an entry to the event log')
    .argument('<level>', 'info | warn | error')
    .argument('<title>', 'one line, at most 200 characters')
    .option('--text <text>', 'details (at most 2000 characters)')
    .option('--service <name>', 'service the event is about')
    .option('--ts <ms>', 'event time in epoch ms (default: now)')
    .action((level: string, title: string, options: Record<string, string | undefined>) =>
      run(shared, () =>
        validate(
          defined({
            type: 'event',
            level,
            title,
            text: options.text,
            service: options.service,
            ts: options.ts === undefined ? undefined : toNumber('ts', options.ts, true),
          }),
        ),
      ),
    );

  publish
    .command('json')
    .description(
      'publish raw JSON: one event or a {"type":"metrics","points":[…]} batch ("-" or nothing: stdin)',
    )
    .argument('[json]', 'the event as JSON')
    .action((json: string | undefined) =>
      run(shared, async () => {
        const raw = json === undefined || json === '-' ? await readStdin() : json;
        const parsed = parseRawEventInput(raw);
        if (!parsed.ok) throw badInput(parsed.message);
        return parsed.value;
      }),
    );
}
