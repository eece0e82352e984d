// `pulseboard board add|remove|list|grant|revoke` (docs/security.md, "Boards and access"). Every change
// publishes a control message, so each worker refreshes its board list or narrows the open streams of the
// users concerned within a second (docs/events.md, "Boards"). `main` always exists.
import type { Command } from 'commander';
import type { PublicSettings } from '../../shared/status-page.ts';
import { BoardInputError, BoardStore, parseBoardName } from '../auth/boards.ts';
import { TokenStore } from '../auth/tokens.ts';
import { grantedBoards, normalizeUsername, UserInputError, UserStore } from '../auth/users.ts';
import { publishControl } from '../bus/control.ts';
import { cliAction } from './errors.ts';
import { withInstallation } from './installation.ts';

const INPUT_ERRORS = [BoardInputError, UserInputError];

export function registerBoards(program: Command): void {
  const board = program
    .command('board')
    .description('manage boards and who may see them (REDIS_URL, PULSEBOARD_PREFIX)');

  board
    .command('add <board>')
    .description('create a board: 1..64 of a-z 0-9 - (main always exists)')
    .option('--title <title>', 'the name shown on the dashboard (default: the board name)')
    .action(
      cliAction(async (rawName: string, options: { title?: string }) => {
        const name = parseBoardName(rawName);
        const info = await withInstallation(async (redis, names) => {
          const added = await new BoardStore(redis, names).add(name, options.title);
          await publishControl(redis, names, { type: 'boards-changed' });
          return added;
        });
        process.stdout.write(`added board ${info.name} (${info.title})\n`);
      }, INPUT_ERRORS),
    );

  board
    .command('remove <board>')
    .description(
      "remove a board: its events, state and history are deleted, with every user's grant and token's limit to it",
    )
    .action(
      cliAction(async (rawName: string) => {
        const name = parseBoardName(rawName);
        const { holders, tokens } = await withInstallation(async (redis, names) => {
          if (!(await new BoardStore(redis, names).remove(name)))
            throw new BoardInputError(`no board ${name}`);
          const holders = await new UserStore(redis, names).revokeBoardFromAll(name);
          const tokens = await new TokenStore(redis, names).removeBoard(name);
          await publishControl(redis, names, { type: 'board-removed', board: name });
          return { holders, tokens };
        });
        const from = holders.length > 0 ? `; revoked from ${holders.join(', ')}` : '';
        process.stdout.write(`removed board ${name}${from}\n`);
        if (tokens.revoked.length > 0)
          process.stdout.write(`revoked tokens limited to it alone: ${tokens.revoked.join(', ')}\n`);
        if (tokens.narrowed.length > 0)
          process.stdout.write(`took it out of the tokens ${tokens.narrowed.join(', ')}\n`);
      }, INPUT_ERRORS),
    );

  board
    .command('list')
    .description('list boards with their title and the users granted each (admins see every board)')
    .action(
      cliAction(async () => {
        const { boards, users } = await withInstallation(async (redis, names) => ({
          boards: await new BoardStore(redis, names).list(),
          users: await new UserStore(redis, names).list(),
        }));
        const rows = boards.map((info) => {
          const granted = users
            .filter((user) => user.role !== 'admin' && grantedBoards(user).includes(info.name))
            .map((user) => user.name);
          return [info.name, info.title, granted.length > 0 ? granted.join(', ') : '(admins only)'] as const;
        });
        process.stdout.write(formatTable(['BOARD', 'TITLE', 'USERS'], rows));
      }),
    );

  board
    .command('public <board> [mode]')
    .description(
      'turn the public status page of a board on (showing only the services named) or off; without on/off, show its settings (docs/status-pages.md)',
    )
    .option('--service <name>', 'a service the page shows (repeat for more; none by default)', collect, [])
    .option(
      '--embed-origin <origin>',
      'an origin that may frame /status/<board>/embed, e.g. https://example.com (repeat for more; none by default)',
      collect,
      [],
    )
    .action(
      cliAction(
        async (
          rawName: string,
          mode: string | undefined,
          options: { service: string[]; embedOrigin: string[] },
        ) => {
          const name = parseBoardName(rawName);
          if (mode !== undefined && mode !== 'on' && mode !== 'off')
            throw new BoardInputError(`mode: must be on or off, not ${JSON.stringify(mode)}`);
          if (mode !== 'on' && (options.service.length > 0 || options.embedOrigin.length > 0))
            throw new BoardInputError('--service and --embed-origin go with `on`');
          const line = await withInstallation(async (redis, names) => {
            const boards = new BoardStore(redis, names);
            if (mode === undefined) {
              const settings = await boards.getPublic(name);
              if (!settings) return `board ${name}: public status page off`;
              return describePublic(name, settings);
            }
            if (mode === 'off') {
              const was = await boards.clearPublic(name);
              await publishControl(redis, names, { type: 'public-changed', board: name });
              return was
                ? `turned off the public status page of ${name}`
                : `board ${name}: public status page was off`;
            }
            const settings = await boards.setPublic(name, {
              services: [...new Set(options.service)],
              embedOrigins: [...new Set(options.embedOrigin)],
            });
            await publishControl(redis, names, { type: 'public-changed', board: name });
            return describePublic(name, settings);
          });
          process.stdout.write(`${line}\n`);
        },
        INPUT_ERRORS,
      ),
    );

  for (const [verb, description] of [
    ['grant', 'let a user see a board (admins see every board already)'],
    ['revoke', "take a board from a user; it leaves the user's open streams within a second"],
  ] as const) {
    board
      .command(`${verb} <board> <user>`)
      .description(description)
      .action(
        cliAction(async (rawBoard: string, rawUser: string) => {
          const name = parseBoardName(rawBoard);
          const userName = normalizeUsername(rawUser);
          const changed = await withInstallation(async (redis, names) => {
            if (!(await new BoardStore(redis, names).exists(name)))
              throw new BoardInputError(`no board ${name}`);
            const users = new UserStore(redis, names);
            // An admin sees every board: a grant would change nothing they can see, so none is written.
            if (verb === 'grant' && (await users.get(userName))?.role === 'admin') return 'admin';
            let changed = false;
            await users.updateBoards(userName, (boards) => {
              const has = boards.includes(name);
              changed = verb === 'grant' ? !has : has;
              return verb === 'grant' ? [...boards, name] : boards.filter((entry) => entry !== name);
            });
            if (changed) await publishControl(redis, names, { type: 'access-changed', userName });
            return changed;
          });
          const done =
            verb === 'grant'
              ? `granted board ${name} to ${userName}`
              : `revoked board ${name} from ${userName}`;
          const already =
            verb === 'grant'
              ? `${userName} already has board ${name}`
              : `${userName} did not have board ${name}`;
          if (changed === 'admin') {
            process.stdout.write(`${userName} is an admin and sees every board already; nothing granted\n`);
            return;
          }
          process.stdout.write(`${changed ? done : already}\n`);
        }, INPUT_ERRORS),
      );
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function describePublic(name: string, settings: PublicSettings): string {
  const services = settings.services.length > 0 ? settings.services.join(', ') : '(none)';
  const embed = settings.embedOrigins.length > 0 ? settings.embedOrigins.join(' ') : '(no site may frame it)';
  return [
    `board ${name}: public status page on at /status/${name}`,
    `  services: ${services}`,
    `  embed:    /status/${name}/embed, framed by ${embed}`,
    `  badge:    /status/${name}/badge.svg`,
  ].join('\n');
}

/** Rows under a header, each column as wide as its widest cell (the last column is not padded). */
function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  '),
    )
    .join('\n')
    .concat('\n');
}
