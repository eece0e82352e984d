// `pulseboard token create|revoke|list`: API tokens for `POST /api/publish`. A token is printed once (on
// stdout, alone, so scripts can capture it) and only its SHA-256 is kept. `--board` (repeatable) limits a
// token to boards that exist.
import type { Command } from 'commander';
import { BoardInputError, BoardStore, parseBoardName } from '../auth/boards.ts';
import { TOKEN_ROLES, TokenInputError, TokenStore, type TokenRole } from '../auth/tokens.ts';
import { CliError, cliAction } from './errors.ts';
import { withInstallation } from './installation.ts';

function parseTokenRole(value: string): TokenRole {
  const role = TOKEN_ROLES.find((candidate) => candidate === value);
  if (!role) throw new CliError(`token role must be one of ${TOKEN_ROLES.join(', ')}`);
  return role;
}

export function registerTokens(program: Command): void {
  const token = program.command('token').description('manage API tokens for POST /api/publish');

  token
    .command('create')
    .description('create a token; it is printed once')
    .requiredOption('--name <name>', 'a unique name, e.g. the script or host that uses it')
    .option('--role <role>', TOKEN_ROLES.join(' | '), 'publisher')
    .option(
      '--board <board>',
      'limit the token to this board (repeatable; default: every board)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(
      cliAction(
        async (options: { name: string; role: string; board: string[] }) => {
          const role = parseTokenRole(options.role);
          const boards = options.board.map(parseBoardName);
          const { token: secret, record } = await withInstallation(async (redis, names) => {
            const store = new BoardStore(redis, names);
            for (const board of boards) {
              if (!(await store.exists(board))) throw new BoardInputError(`no board ${board}`);
            }
            return new TokenStore(redis, names).create(options.name, role, boards);
          });
          const limit = record.boards ? `, boards ${record.boards.join(', ')}` : '';
          process.stderr.write(
            `created API token ${record.name} (id ${record.id}, ${record.role}${limit}); it is shown only now:\n`,
          );
          process.stdout.write(`${secret}\n`);
        },
        [TokenInputError, BoardInputError],
      ),
    );

  token
    .command('revoke <nameOrId>')
    .description('revoke a token by name or id')
    .action(
      cliAction(async (nameOrId: string) => {
        const revoked = await withInstallation((redis, names) =>
          new TokenStore(redis, names).revoke(nameOrId),
        );
        if (revoked === 0) throw new CliError(`no token named ${nameOrId} or with that id`);
        process.stdout.write(`revoked ${revoked} token${revoked === 1 ? '' : 's'}\n`);
      }),
    );

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(
      cliAction(async () => {
        const records = await withInstallation((redis, names) => new TokenStore(redis, names).list());
        if (records.length === 0) process.stdout.write('no tokens\n');
        for (const record of records) {
          const created = new Date(record.createdAt).toISOString();
          const boards = record.boards ? `  boards ${record.boards.join(',')}` : '';
          process.stdout.write(
            `${record.id}  ${record.name.padEnd(24)} ${record.role.padEnd(10)} created ${created}${boards}\n`,
          );
        }
      }),
    );
}
