// `pulseboard` command line: each command lives in its own module and registers itself here. Only the
// module of the command being run is imported: importing all of them (Redis client, zod schemas, the
// server) cost ~0.5 s before any command could start. Help without a command loads them all. A command
// that fails throws a CliError; it is printed here, once (server/cli/errors.ts).
import { Command } from 'commander';
import { reportCliError } from './errors.ts';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => registerServe,
  demo: async () => (await import('./demo.ts')).registerDemo,
  publish: async () => (await import('./publish.ts')).registerPublish,
  tail: async () => (await import('./tail.ts')).registerTail,
  user: async () => (await import('./users.ts')).registerUsers,
  token: async () => (await import('./tokens.ts')).registerTokens,
  board: async () => (await import('./boards.ts')).registerBoards,
};

function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run one pulseboard worker (configuration from the environment; see .env.example)')
    .action(async () => {
      await import('../main.ts');
    });
}

/** The command named on the command line, if it is one. */
function commandName(argv: readonly string[]): string | undefined {
  const name = argv[2];
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? name : undefined;
}

/** The command named on the command line, or all of them for help and mistakes. */
function loadersFor(name: string | undefined): (() => Promise<Register>)[] {
  const named = name === undefined ? undefined : COMMANDS[name];
  return named ? [named] : Object.values(COMMANDS);
}

// A reader that stops early (`pulseboard board list | head -1`) closes the pipe: the rest of the output
// has nowhere to go, which is not a failure of the command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

const program = new Command('pulseboard').description(
  'live status and metrics dashboard over Server-Sent Events',
);
const command = commandName(process.argv);
const registers = await Promise.all(loadersFor(command).map((load) => load()));
for (const register of registers) register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportCliError(command, error);
}
