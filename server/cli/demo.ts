// `pulseboard demo`: one worker with simulated services, on a private Redis when none answers.
import type { Command } from 'commander';
import { createPublisher } from '../../shared/publisher.ts';
import { BoardInputError, BoardStore } from '../auth/boards.ts';
import { ensureFirstAdmin, type FirstAdminResult } from '../auth/first-admin.ts';
import { FIRST_ADMIN_NAME, UserStore } from '../auth/users.ts';
import { NO_REDIS_HELP, redisAnswers, startPrivateRedis, type PrivateRedis } from '../demo/private-redis.ts';
import { startSimulator } from '../demo/simulator.ts';
import { createLogger, humanLogDestination } from '../log.ts';
import { startPulseboard } from '../pulseboard.ts';
import { CliError } from './errors.ts';
import { cliConfig, redactRedisUrl, withInstallation } from './installation.ts';

export const DEMO_DATA_DIR = '.data/redis';
/** Boards the demo creates (if missing) and simulates besides `main`; the admin sees them all. */
export const DEMO_BOARDS: readonly { name: string; title: string }[] = [
  { name: 'payments', title: 'Payments' },
  { name: 'edge', title: 'Edge' },
];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run pulseboard with simulated services (starts a private redis-server if none answers)')
    .option('--interval <ms>', 'milliseconds between simulated ticks', '1000')
    .action(async (options: { interval: string }) => {
      const env = { ...process.env };
      let privateRedis: PrivateRedis | null = null;
      const wanted = env.REDIS_URL || 'redis://127.0.0.1:6379';
      if (!(await redisAnswers(wanted))) {
        if (env.REDIS_URL)
          throw new CliError(`No Redis answered at REDIS_URL=${redactRedisUrl(wanted)}.\n${NO_REDIS_HELP}`);
        privateRedis = await startPrivateRedis(DEMO_DATA_DIR);
        if (!privateRedis) throw new CliError(NO_REDIS_HELP);
        process.stdout.write(
          `No Redis answered at ${wanted}; started a private redis-server at ${privateRedis.url} (data in ${DEMO_DATA_DIR}).\n`,
        );
        env.REDIS_URL = privateRedis.url;
      }
      const config = cliConfig({ LOG_LEVEL: 'warn', ...env });
      const log = createLogger(config.LOG_LEVEL, humanLogDestination());
      // The demo creates the first admin itself (before the worker would) so it can say how to log in.
      const firstAdmin = await withInstallation(async (redis, names) => {
        const created = await ensureFirstAdmin(new UserStore(redis, names), config.PULSEBOARD_ADMIN_PASSWORD);
        const boards = new BoardStore(redis, names);
        for (const { name, title } of DEMO_BOARDS) {
          await boards.add(name, title).catch((error: unknown) => {
            if (!(error instanceof BoardInputError)) throw error; // exists from an earlier demo: kept
          });
        }
        return created;
      }, config);
      const pulseboard = await startPulseboard(config, { log });
      const simulator = startSimulator(
        createPublisher(pulseboard.redis, { prefix: config.PULSEBOARD_PREFIX }),
        {
          intervalMs: Number(options.interval) || 1000,
          boards: DEMO_BOARDS.map((board) => board.name),
          onError: (error) => log.warn({ err: error }, 'demo publish failed'),
        },
      );
      const shownUrl = pulseboard.url.replace('127.0.0.1', 'localhost');
      process.stdout.write(banner(shownUrl, firstAdmin));

      const stop = async () => {
        simulator.stop();
        await pulseboard.stop();
        await privateRedis?.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}

/** Bold on a terminal (unless NO_COLOR), plain in a pipe or a log file. */
function strong(text: string): string {
  return process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${text}\x1b[22m` : text;
}

/** The demo's first screen for a person: where to go and how to log in, set apart from log lines. */
function banner(url: string, firstAdmin: FirstAdminResult): string {
  let login: string;
  if (firstAdmin.generatedPassword) {
    login =
      `  Log in as ${FIRST_ADMIN_NAME} with password ${strong(firstAdmin.generatedPassword)}\n` +
      `  (shown once; change it with: pulseboard user passwd ${FIRST_ADMIN_NAME})\n`;
  } else if (firstAdmin.created) {
    login = `  Log in as ${FIRST_ADMIN_NAME} with the password in PULSEBOARD_ADMIN_PASSWORD.\n`;
  } else {
    login =
      `  Log in with an existing user (forgot it? pulseboard user passwd ${FIRST_ADMIN_NAME},\n` +
      `  or pulseboard user add <name> --role admin).\n`;
  }
  return `\n  pulseboard demo is running at ${strong(url)}  (Ctrl-C to stop)\n${login}\n`;
}
