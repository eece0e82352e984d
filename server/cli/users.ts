// `pulseboard user add|passwd|remove|list` (docs/design.md, "Sessions, users, security"). Passwords are read
// without echo from a terminal or from stdin. A password change or a removal ends the user's sessions:
// the new security stamp voids them, and a control message closes their open streams on every worker.
import type { Command } from 'commander';
import { ROLES, type Role } from '../../shared/api.ts';
import { BoardInputError, BoardStore, parseBoardName } from '../auth/boards.ts';
import { grantedBoards, UserInputError, UserStore, normalizeUsername } from '../auth/users.ts';
import { publishControl } from '../bus/control.ts';
import { CliError, cliAction } from './errors.ts';
import { withInstallation } from './installation.ts';
import { readNewPassword } from './read-password.ts';

function parseRole(value: string): Role {
  const role = ROLES.find((candidate) => candidate === value);
  if (!role) throw new CliError(`role must be one of ${ROLES.join(', ')}`);
  return role;
}

export function registerUsers(program: Command): void {
  const user = program.command('user').description('manage dashboard users (REDIS_URL, PULSEBOARD_PREFIX)');

  user
    .command('add <name>')
    .description('add a user; the password is asked without echo, or read from stdin')
    .option('--role <role>', `${ROLES.join(' | ')}`, 'viewer')
    .option(
      '--board <board>',
      'a board the user may see (repeatable; default none, admins see every board)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(
      cliAction(
        async (rawName: string, options: { role: string; board: string[] }) => {
          const role = parseRole(options.role);
          const name = normalizeUsername(rawName);
          const boards = options.board.map(parseBoardName);
          // Checked before the password is asked for, so a typo does not cost typing it twice.
          await withInstallation(async (redis, names) => {
            const store = new BoardStore(redis, names);
            for (const board of boards) {
              if (!(await store.exists(board))) throw new BoardInputError(`no board ${board}`);
            }
          });
          const password = await readNewPassword(name);
          await withInstallation(async (redis, names) => {
            await new UserStore(redis, names).add(name, password, role, { boards });
          });
          process.stdout.write(`added user ${name} (${role})\n`);
        },
        [UserInputError, BoardInputError],
      ),
    );

  user
    .command('passwd <name>')
    .description("set a user's password (ends the user's sessions)")
    .action(
      cliAction(
        async (rawName: string) => {
          const name = normalizeUsername(rawName);
          await withInstallation(async (redis, names) => {
            const users = new UserStore(redis, names);
            if (!(await users.get(name))) throw new UserInputError(`no user ${name}`);
            await users.setPassword(name, await readNewPassword(name));
            await publishControl(redis, names, { type: 'close-user', userName: name });
          });
          process.stdout.write(`changed the password of ${name}; their sessions were ended\n`);
        },
        [UserInputError],
      ),
    );

  user
    .command('remove <name>')
    .description("remove a user (ends the user's sessions and closes their streams)")
    .action(
      cliAction(
        async (rawName: string) => {
          const name = normalizeUsername(rawName);
          await withInstallation(async (redis, names) => {
            if (!(await new UserStore(redis, names).remove(name)))
              throw new UserInputError(`no user ${name}`);
            await publishControl(redis, names, { type: 'close-user', userName: name });
          });
          process.stdout.write(`removed user ${name}\n`);
        },
        [UserInputError],
      ),
    );

  user
    .command('list')
    .description('list users')
    .action(
      cliAction(async () => {
        const users = await withInstallation((redis, names) => new UserStore(redis, names).list());
        if (users.length === 0) process.stdout.write('no users\n');
        for (const entry of users) {
          const created = new Date(entry.createdAt).toISOString();
          const boards = entry.role === 'admin' ? '' : `  boards ${grantedBoards(entry).join(',') || '-'}`;
          process.stdout.write(
            `${entry.name.padEnd(24)} ${entry.role.padEnd(8)} created ${created}${boards}\n`,
          );
        }
      }),
    );
}
