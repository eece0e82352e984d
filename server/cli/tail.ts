// `pulseboard tail`: follows `GET /events` in a terminal, one line per event (or one JSON line with
// `--json`), resuming by the frame id (the cursor of every board of the stream, docs/events.md, "Resume")
// across reconnects like a browser does. It is a client of the server: it needs
// only the URL and a session (PULSEBOARD_COOKIE, or `--user` with PULSEBOARD_PASSWORD to log in); secrets
// never on the command line. Everything the server sends is escaped before it reaches the terminal.
import { Option, type Command } from 'commander';
import { EventSource, type FetchLike } from 'eventsource';
import { errorResponseSchema } from '../../shared/api.ts';
import { boardSchema, DEFAULT_BOARD } from '../../shared/boards.ts';
import { parseCursor } from '../../shared/cursor.ts';
import { envelopeSchema, type Envelope } from '../../shared/events.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';
import { CliError, EXIT_BAD_INPUT, EXIT_FAILURE, exitOnUsageError } from './errors.ts';
import { cliConfig } from './installation.ts';

const DEFAULT_URL = 'http://localhost:3000';

interface TailOptions {
  url?: string;
  topics?: string;
  boards?: string;
  since?: string;
  json?: boolean;
  cookie?: string;
  user?: string;
}

/**
 * Event text comes from anyone who can publish: escape C0/C1 controls (an ESC sequence could rewrite the
 * terminal) and bidi overrides (which could make a line read differently than it is).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (char) => {
    if (char === '\n') return '\\n';
    if (char === '\r') return '\\r';
    if (char === '\t') return '\\t';
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** One terminal line per event: time, board (unless `main`), type, then the fields a person scans for. */
export function formatEvent(event: Envelope): string {
  const stamp = new Date(event.ts).toISOString();
  const time = event.board === DEFAULT_BOARD ? stamp : `${stamp} [${event.board}]`;
  switch (event.type) {
    case 'status': {
      const group = event.group ? ` (${event.group})` : '';
      const message = event.message ? ` - ${printable(event.message)}` : '';
      const ttl = event.ttl ? ` ttl=${event.ttl}s` : '';
      return `${time} status ${event.service}${group} ${event.state}${message}${ttl}`;
    }
    case 'metric':
      return `${time} metric ${event.name} ${event.value}${event.unit ? ` ${printable(event.unit)}` : ''}`;
    case 'event': {
      const service = event.service ? ` [${event.service}]` : '';
      const text = event.text ? ` - ${printable(event.text)}` : '';
      return `${time} event ${event.level}${service} ${printable(event.title)}${text}`;
    }
  }
}

/** `--json`: the envelope as one JSON line; JSON leaves C1 controls and bidi overrides raw, so escape them. */
function jsonLine(event: Envelope): string {
  return JSON.stringify(event).replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The server's explanation of a refusal, escaped: it is text from the other end of the wire. */
async function errorMessage(response: Response): Promise<string> {
  try {
    const body = errorResponseSchema.safeParse(await response.json());
    if (body.success) return printable(body.data.error.message);
  } catch {
    // not JSON: fall back to the status line
  }
  return printable(response.statusText) || `HTTP ${response.status}`;
}

/** `POST /api/login` (docs/design.md, "Interfaces at a glance"); returns the session cookie to send with the stream. */
async function logIn(base: URL, username: string, password: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(new URL('/api/login', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: base.origin },
      body: JSON.stringify({ username, password }),
      redirect: 'manual',
    });
  } catch (error) {
    throw new CliError(
      `cannot reach ${base.origin}: ${printable(error instanceof Error ? error.message : String(error))}`,
    );
  }
  if (!response.ok) {
    throw new CliError(`login as ${username} failed (${response.status}): ${await errorMessage(response)}`);
  }
  const cookies = response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0]?.trim() ?? '')
    .filter(Boolean);
  if (cookies.length === 0) throw new CliError('login succeeded but the server set no session cookie');
  return cookies.join('; ');
}

function streamUrl(base: URL, options: TailOptions, since: string | undefined): URL {
  const url = new URL('/events', base);
  if (options.topics) url.searchParams.set('topics', options.topics);
  if (options.boards) url.searchParams.set('boards', options.boards);
  if (since) url.searchParams.set('since', since);
  return url;
}

/** Follows the stream until Ctrl-C (resolves) or a refusal (rejects with a CliError). */
async function follow(options: TailOptions): Promise<void> {
  const config = cliConfig();
  const rawUrl = options.url ?? config.PULSEBOARD_URL ?? DEFAULT_URL;
  let base: URL;
  try {
    base = new URL(rawUrl);
  } catch {
    throw new CliError(`--url: "${rawUrl}" is not a URL`, EXIT_BAD_INPUT);
  }
  if (options.since !== undefined && !parseCursor(options.since).ok) {
    throw new CliError(
      `--since: "${printable(options.since.slice(0, 80))}" is not a stream id like 1700000000000-0 or a cursor like edge:1700000000000-3,main:1700000000001-0`,
      EXIT_BAD_INPUT,
    );
  }
  const badBoard = options.boards?.split(',').find((board) => !boardSchema.safeParse(board).success);
  if (badBoard !== undefined) {
    throw new CliError(`--boards: "${printable(badBoard.slice(0, 80))}" is not a board name`, EXIT_BAD_INPUT);
  }
  const password = config.PULSEBOARD_PASSWORD;
  if (options.user && !password) {
    throw new CliError(
      '--user needs the password in the environment variable PULSEBOARD_PASSWORD',
      EXIT_BAD_INPUT,
    );
  }
  // A session on the command line is visible to every user of the machine (ps, /proc) and lands in shell
  // history: the cookie is only taken from the environment (docs/security.md, "Hardening").
  if (options.cookie !== undefined) {
    throw new CliError(
      '--cookie would put a session on the command line (visible in ps and shell history); set PULSEBOARD_COOKIE, or log in with --user and PULSEBOARD_PASSWORD',
      EXIT_BAD_INPUT,
    );
  }
  let cookie = config.PULSEBOARD_COOKIE;
  if (options.user && password) cookie = await logIn(base, options.user, password);

  return new Promise<void>((resolve, reject) => {
    let lastId = options.since;
    let source: EventSource | undefined;
    let refusal: string | undefined;
    let opened = false;
    let reportedLoss = false;

    // The stream's answer is read here so a refusal (401, 400) can be explained with the server's words.
    const fetchWithSession: FetchLike = async (input, init) => {
      const headers = { ...(init?.headers ?? {}), ...(cookie ? { Cookie: cookie } : {}) };
      const response = await fetch(input, { ...init, headers });
      refusal = response.ok ? undefined : `${response.status}: ${await errorMessage(response.clone())}`;
      return response;
    };

    /** Ends the stream: `failure` undefined for Ctrl-C, else the reason to exit non-zero. */
    const stop = (failure?: CliError) => {
      source?.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (failure) reject(failure);
      else resolve();
    };
    const onSignal = () => stop();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    const open = () => {
      // Resume from the last id printed: a reopened stream (after a new login) misses nothing either.
      const current = new EventSource(streamUrl(base, options, lastId), { fetch: fetchWithSession });
      source = current;
      current.addEventListener('open', () => {
        process.stderr.write(
          `${opened ? 'reconnected to' : 'following'} ${base.origin}${options.boards ? ` (boards ${options.boards})` : ''}${options.topics ? ` (topics ${options.topics})` : ''}; Ctrl-C to stop\n`,
        );
        opened = true;
        reportedLoss = false;
      });
      for (const type of EVENT_KINDS) {
        current.addEventListener(type, (message) => {
          let parsed;
          try {
            parsed = envelopeSchema.safeParse(JSON.parse(message.data));
          } catch {
            parsed = undefined;
          }
          if (!parsed?.success) {
            process.stderr.write('skipped an event that does not match the schema\n');
            return;
          }
          // The frame id names every board of the stream; an older server's is the event's own id.
          lastId = message.lastEventId || parsed.data.id;
          process.stdout.write(`${options.json ? jsonLine(parsed.data) : formatEvent(parsed.data)}\n`);
        });
      }
      current.addEventListener('reset', () => {
        process.stderr.write(
          'reset: the server no longer has every event since the last one shown; some were skipped\n',
        );
      });
      current.addEventListener('error', () => {
        if (current.readyState !== EventSource.CLOSED) {
          if (!reportedLoss) process.stderr.write('connection lost; reconnecting…\n');
          reportedLoss = true;
          return;
        }
        // A refusal (not a network error) ends EventSource for good.
        if (refusal?.startsWith('401') && options.user && password) {
          logIn(base, options.user, password).then(
            (fresh) => {
              cookie = fresh;
              open();
            },
            (error: unknown) => {
              const reason = error instanceof Error ? error.message : String(error);
              stop(error instanceof CliError ? error : new CliError(printable(reason)));
            },
          );
          return;
        }
        const hint = refusal?.startsWith('401')
          ? ' (log in with --user <name> and PULSEBOARD_PASSWORD, or set PULSEBOARD_COOKIE)'
          : '';
        stop(
          new CliError(
            `the server refused the stream${refusal ? ` (${refusal})` : ''}${hint}`,
            refusal?.startsWith('400') ? EXIT_BAD_INPUT : EXIT_FAILURE,
          ),
        );
      });
    };
    open();
  });
}

export function registerTail(program: Command): void {
  program
    .command('tail')
    .description('follow the live event stream in the terminal, one line per event')
    .option('--url <url>', `pulseboard base URL (env PULSEBOARD_URL, default ${DEFAULT_URL})`)
    .option('--boards <list>', 'only these boards, e.g. payments,edge (default: every board you may see)')
    .option('--topics <list>', 'only these topics, e.g. status:*,metric:api.*,event:error')
    .option(
      '--since <cursor>',
      "first print every event after this id (main's) or cursor (board:id,…), then follow",
    )
    .option('--json', 'print each event as one line of JSON (the SSE envelope)')
    // Kept only to refuse it with an explanation; the cookie comes from env PULSEBOARD_COOKIE.
    .addOption(new Option('--cookie <cookie>').hideHelp())
    .option('--user <name>', 'log in as this user first; the password comes from env PULSEBOARD_PASSWORD')
    .exitOverride(exitOnUsageError)
    .action((options: TailOptions) => follow(options));
}
