// Widen the net (issue 14): `pulseboard publish` arguments, fuzzed in process (the real command and its
// real Redis publish; only process.exit and the output streams are captured for the duration). Every case
// exits 0 having printed the new ids, or 2 with a message — never an exception or another code.
import { expect } from 'chai';
import { Command } from 'commander';
import fc from 'fast-check';
import { reportCliError } from '../../server/cli/errors.ts';
import { registerPublish } from '../../server/cli/publish.ts';
import { EVENT_LEVELS, STATUS_STATES } from '../../shared/events.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { FUZZ_SEED, fuzzRuns } from './fuzz-arbitraries.ts';

class ExitCalled extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulseboard publish …argv` in this process and returns what a shell would have seen. */
async function runPublish(argv: string[]): Promise<CliOutcome> {
  const program = new Command('pulseboard').exitOverride();
  registerPublish(program);
  let stdout = '';
  let stderr = '';
  const saved = {
    exit: process.exit,
    out: process.stdout.write,
    err: process.stderr.write,
    code: process.exitCode,
  };
  process.exitCode = undefined;
  process.exit = ((code?: number) => {
    throw new ExitCalled(code ?? 0);
  }) as typeof process.exit;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'pulseboard', 'publish', ...argv]);
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    return { code, stdout, stderr };
  } catch (error) {
    if (error instanceof ExitCalled) return { code: error.code, stdout, stderr };
    // What server/cli/main.ts does with a failing command: print it once, exit with its code.
    const code = reportCliError('publish', error);
    return { code, stdout, stderr };
  } finally {
    process.exit = saved.exit;
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.exitCode = saved.code;
  }
}

const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom('ok', 'down', 'info', 'api', '12.5', '-3', '1e3', 'NaN', 'Infinity', '', '-', '--', '{}'),
  fc.json({ maxDepth: 2 }),
);
const name = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,64}$/);
const option = fc.tuple(
  fc.constantFrom('--message', '--group', '--ttl', '--ts', '--unit', '--text', '--service', '--bogus', '-x'),
  text,
);

describe('fuzzing CLI arguments', function () {
  this.timeout(180_000);
  const bed = useTestBed();

  it('pulseboard publish: every argument list exits 0 with ids or 2 with a message', async function () {
    const saved = { url: process.env.REDIS_URL, prefix: process.env.PULSEBOARD_PREFIX };
    process.env.REDIS_URL = bed.redis.url;
    process.env.PULSEBOARD_PREFIX = bed.prefix;
    let published = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.tuple(
              fc.constantFrom('status', 'metric', 'event', 'json', 'bogus'),
              fc.array(text, { maxLength: 3 }),
            ),
            fc.tuple(fc.constant('status'), fc.tuple(name, fc.constantFrom(...STATUS_STATES))),
            fc.tuple(fc.constant('metric'), fc.tuple(name, fc.double({ noNaN: true }).map(String))),
            fc.tuple(
              fc.constant('event'),
              fc.tuple(fc.constantFrom(...EVENT_LEVELS), fc.string({ minLength: 1, maxLength: 200 })),
            ),
          ),
          fc.array(option, { maxLength: 3 }),
          async ([command, positional], options) => {
            const argv = [command, ...positional, ...options.flat()];
            const outcome = await runPublish(argv);
            expect([0, 2], `${JSON.stringify(argv)} -> ${JSON.stringify(outcome)}`).to.include(outcome.code);
            if (outcome.code === 0) {
              expect(outcome.stdout).to.match(/^(\d+-\d+\n)+$/);
              published += 1;
            } else {
              expect(outcome.stderr.trim(), JSON.stringify(argv)).to.not.equal('');
            }
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
      );
    } finally {
      process.env.REDIS_URL = saved.url;
      process.env.PULSEBOARD_PREFIX = saved.prefix;
      if (saved.url === undefined) delete process.env.REDIS_URL;
      if (saved.prefix === undefined) delete process.env.PULSEBOARD_PREFIX;
    }
    expect(published, 'some argument lists were valid').to.be.greaterThan(0);
    console.log(`      ${published} of ${fuzzRuns(300)} argument lists published`);
  });
});
