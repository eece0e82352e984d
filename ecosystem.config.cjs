// PM2 process file (docs/design.md, "Processes"; docs/deployment.md). CommonJS because the package is ESM.
//
// The script is bin/pulseboard-worker.js, which registers tsx and imports server/main.ts. PM2 7 refuses a
// .ts script on Node < 22.18 unless an interpreter is forced, and then looks for ts-node and logs a
// misleading "TypeScript support unavailable" at every start; a .js entry runs unchanged in cluster mode.

/** WEB_CONCURRENCY workers; unset, empty or 0 means one per CPU core (PM2's 'max'). */
function instances() {
  const raw = process.env.WEB_CONCURRENCY;
  const count = raw === undefined || raw.trim() === '' ? 0 : Number(raw);
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`WEB_CONCURRENCY must be a whole number >= 0, got "${raw}"`);
  }
  return count === 0 ? 'max' : count;
}

/** The worker's own drain deadline (server/config.ts); PM2 must wait longer before it SIGKILLs. */
function shutdownTimeoutMs() {
  const raw = process.env.SHUTDOWN_TIMEOUT_MS;
  const value = raw === undefined || raw.trim() === '' ? 1200 : Number(raw);
  return Number.isInteger(value) && value > 0 ? value : 1200;
}

module.exports = {
  apps: [
    {
      name: 'pulseboard',
      cwd: __dirname,
      script: 'bin/pulseboard-worker.js',
      exec_mode: 'cluster',
      instances: instances(),
      // A new worker counts as up only when it has sent 'ready' (server/main.ts: after listening and
      // subscribed to Redis); `pm2 reload` stops an old worker only then.
      wait_ready: true,
      // How long a reload waits for 'ready' before it stops the old worker anyway (PM2 has no rollback).
      listen_timeout: 15_000,
      // SIGINT first, SIGKILL after this. The worker exits within SHUTDOWN_TIMEOUT_MS (1.2 s by default;
      // usually ~10 ms), so this is only the backstop.
      kill_timeout: Math.max(5000, shutdownTimeoutMs() + 2000),
      // A crash loop backs off instead of spinning (100 ms doubling, capped by PM2 at 15 s).
      exp_backoff_restart_delay: 100,
      merge_logs: true,
      // No PM2 monitoring agent in the workers: it wraps every request (a closure kept for a stream's whole
      // life) and scans the sockets every second, for the HTTP panel of `pm2 monit` only. pulseboard has
      // its own metrics (`/metrics`, docs/operations.md).
      pmx: false,
      env: { NODE_ENV: 'production' },
    },
  ],
};
