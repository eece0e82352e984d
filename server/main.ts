// The only module with side effects at start: reads the environment, starts the worker, installs signal
// handlers and tells PM2 it is ready (after listening and subscribed).
import { checkServerConfig, ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { installMemoryReport } from './memory-report.ts';
import { startPulseboard } from './pulseboard.ts';

let config: Config;
try {
  config = loadConfig(process.env);
  checkServerConfig(config);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`pulseboard: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const log = createLogger(config.LOG_LEVEL);
const pulseboard = await startPulseboard(config, { log });
log.info({ url: pulseboard.url, worker: process.env.NODE_APP_INSTANCE }, 'pulseboard listening');

let shuttingDown = false;
function shutdown(signal: string): void {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    log.warn('shutdown took too long; exiting');
    process.exit(1);
  }, config.SHUTDOWN_TIMEOUT_MS);
  deadline.unref();
  pulseboard.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      log.error({ err: error }, 'error during shutdown');
      process.exit(1);
    },
  );
}
process.on('SIGINT', () => shutdown('SIGINT'));
// Bench only: SIGUSR2 reports memory after a forced GC (server/memory-report.ts); unset, nothing is installed.
installMemoryReport(process.env.BENCH_MEMORY_DIR);
process.on('SIGTERM', () => shutdown('SIGTERM'));
// PM2 on Windows and some orchestrators send a message instead of a signal.
process.on('message', (message) => {
  if (message === 'shutdown') shutdown('message');
});
// Only now: a supervisor may signal the moment it reads 'ready', and a signal that comes before the
// handlers exist kills the worker without draining (seen in test/ops/shutdown.test.ts).
process.send?.('ready');
