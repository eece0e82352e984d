// `pulseboard demo`: one worker with simulated services, on a private Redis when none answers.
import type { Command } from 'commander';
import { createPublisher } from '../../shared/publisher.ts';
import { loadConfig } from '../config.ts';
import { NO_REDIS_HELP, redisAnswers, startPrivateRedis, type PrivateRedis } from '../demo/private-redis.ts';
import { startSimulator } from '../demo/simulator.ts';
import { createLogger } from '../log.ts';
import { startPulseboard } from '../pulseboard.ts';

export const DEMO_DATA_DIR = '.data/redis';

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
        if (env.REDIS_URL) {
          process.stderr.write(`No Redis answered at REDIS_URL=${wanted}.\n${NO_REDIS_HELP}\n`);
          process.exitCode = 1;
          return;
        }
        privateRedis = await startPrivateRedis(DEMO_DATA_DIR);
        if (!privateRedis) {
          process.stderr.write(`${NO_REDIS_HELP}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(
          `No Redis answered at ${wanted}; started a private redis-server at ${privateRedis.url} (data in ${DEMO_DATA_DIR}).\n`,
        );
        env.REDIS_URL = privateRedis.url;
      }
      const config = loadConfig({ LOG_LEVEL: 'warn', ...env });
      const log = createLogger(config.LOG_LEVEL);
      const pulseboard = await startPulseboard(config, { log });
      const simulator = startSimulator(
        createPublisher(pulseboard.redis, { prefix: config.PULSEBOARD_PREFIX }),
        {
          intervalMs: Number(options.interval) || 1000,
          onError: (error) => log.warn({ err: error }, 'demo publish failed'),
        },
      );
      const shownUrl = pulseboard.url.replace('127.0.0.1', 'localhost');
      process.stdout.write(`pulseboard demo is running at ${shownUrl}  (Ctrl-C to stop)\n`);

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
