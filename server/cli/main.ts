// `pulseboard` command line: each command lives in its own module and registers itself here.
import { Command } from 'commander';
import { registerDemo } from './demo.ts';
import { registerPublish } from './publish.ts';
import { registerTail } from './tail.ts';
import { registerTokens } from './tokens.ts';
import { registerUsers } from './users.ts';

const program = new Command('pulseboard').description(
  'live status and metrics dashboard over Server-Sent Events',
);

program
  .command('serve')
  .description('run one pulseboard worker (configuration from the environment; see .env.example)')
  .action(async () => {
    await import('../main.ts');
  });
registerDemo(program);
registerPublish(program);
registerTail(program);
registerUsers(program);
registerTokens(program);

await program.parseAsync(process.argv);
