// `pulseboard` command line: each command lives in its own module and registers itself here. Only the
// module of the command being run is imported: importing all of them (Redis client, zod schemas, the
// server) cost ~0.5 s before any command could start. Help without a command loads them all.
import { Command } from 'commander';

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

/** The command named on the command line, or all of them for help and mistakes. */
function loadersFor(argv: readonly string[]): (() => Promise<Register>)[] {
  const named = argv[2] === undefined ? undefined : COMMANDS[argv[2]];
  return named && Object.hasOwn(COMMANDS, argv[2] ?? '') ? [named] : Object.values(COMMANDS);
}

const program = new Command('pulseboard').description(
  'live status and metrics dashboard over Server-Sent Events',
);
const registers = await Promise.all(loadersFor(process.argv).map((load) => load()));
for (const register of registers) register(program);

await program.parseAsync(process.argv);
