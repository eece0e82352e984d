// The CLI's one error model: a command throws `CliError` (message and exit code) and `server/cli/main.ts`
// prints it once, as `pulseboard <command>: <message>`, without a stack trace. Anything else is a bug and
// keeps its stack. Usage mistakes that commander itself reports (unknown option, missing argument) exit
// through `exitOnUsageError`, since commander has printed them already.
import type { CommanderError } from 'commander';

/** The command ran but failed: Redis, the server or the configuration said no. */
export const EXIT_FAILURE = 1;
/** The arguments are wrong (a field, an option, a usage error); nothing was done. */
export const EXIT_BAD_INPUT = 2;

/** A failure for the person at the terminal: printed without a stack trace, with its exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_FAILURE) {
    super(message);
    this.exitCode = exitCode;
  }
}

type ErrorClass = new (...args: never[]) => Error;

/**
 * A command's action whose input errors from the stores (`no user bob`, `board edge already exists`)
 * become CliErrors with exit code 1; other errors pass through untouched.
 */
export function cliAction<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
  inputErrors: readonly ErrorClass[] = [],
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof Error && inputErrors.some((type) => error instanceof type))
        throw new CliError(error.message);
      throw error;
    }
  };
}

/**
 * Prints a CliError the one way the CLI does and returns its exit code; anything else is rethrown. Used
 * by `main.ts` (and by tests that run a command in process).
 */
export function reportCliError(command: string | undefined, error: unknown): number {
  if (!(error instanceof CliError)) throw error;
  process.stderr.write(`pulseboard${command ? ` ${command}` : ''}: ${error.message}\n`);
  return error.exitCode;
}

/** For `exitOverride`: commander's usage errors exit 2 like invalid values; help and version exit 0. */
export function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
}
