// Mocha root hook (loaded by .mocharc.json): after the last test, fails the run when anything a test
// opened still keeps the process alive — a server, a socket, a timer, a child process — and names it.
// Mocha runs without `exit: true`, so a leak would otherwise hang the run instead of failing it.

import { createHook } from 'node:async_hooks';

/**
 * With LEAK_TRACE=1, where each live timer was created (timers are not listed with the handles). Off by
 * default: a stack per timer slows the suites.
 */
const timerOrigins = new Map<number, string>();
if (process.env.LEAK_TRACE === '1') {
  createHook({
    init(asyncId, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const stack = (new Error().stack ?? '').split('\n').slice(3, 9).join(' <- ');
      timerOrigins.set(asyncId, stack);
      void resource;
    },
    destroy(asyncId) {
      timerOrigins.delete(asyncId);
    },
  }).enable();
}

/** Resource kinds that are the test runner's own, not a leak. */
const RUNNER_RESOURCES = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'StatWatcher']);
/** How long closed things get to finish closing (sockets in TIME_WAIT do not count; FIN exchanges do). */
const GRACE_MS = 3000;

function leaks(): string[] {
  return process.getActiveResourcesInfo().filter((kind) => !RUNNER_RESOURCES.has(kind));
}

/** Best-effort description of the open handles (server addresses, socket peers, child pids). */
function describeHandles(): string[] {
  const getHandles: unknown = Reflect.get(process, '_getActiveHandles');
  if (typeof getHandles !== 'function') return [];
  const handles: unknown = Reflect.apply(getHandles, process, []);
  if (!Array.isArray(handles)) return [];
  return handles.flatMap((handle: unknown) => {
    const name = (handle as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'unknown';
    const fields = handle as {
      address?: () => unknown;
      remoteAddress?: string;
      remotePort?: number;
      localPort?: number;
      pid?: number;
      spawnfile?: string;
    };
    if (name === 'Socket') {
      // Sockets without a peer are the runner's stdio pipes.
      if (fields.remotePort === undefined) return [];
      return [`Socket ${String(fields.localPort)} -> ${fields.remoteAddress}:${fields.remotePort}`];
    }
    if (name === 'Server' && typeof fields.address === 'function') {
      return [`Server ${JSON.stringify(fields.address())}`];
    }
    if (name === 'Timeout') {
      const timer = handle as { _idleTimeout?: number; _onTimeout?: { name?: string; toString(): string } };
      const callback = timer._onTimeout;
      return [`Timeout ${timer._idleTimeout} ms: ${callback?.toString().replace(/\s+/g, ' ').slice(0, 160)}`];
    }
    if (name === 'ChildProcess') return [`ChildProcess ${fields.pid} ${fields.spawnfile ?? ''}`];
    return [name];
  });
}

export const mochaHooks = {
  async afterAll(this: unknown): Promise<void> {
    const deadline = Date.now() + GRACE_MS;
    while (leaks().length > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setTimeout(resolve, 50).unref());
    }
    const left = leaks();
    if (left.length === 0) return;
    // Fail loudly, then make sure the leak cannot hang the run either.
    setTimeout(() => process.exit(1), 5000).unref();
    throw new Error(
      `tests left ${left.length} handle(s) open: ${left.join(', ')}\n  ${describeHandles().join('\n  ')}` +
        (timerOrigins.size > 0 ? `\n  timers created at:\n  ${[...timerOrigins.values()].join('\n  ')}` : ''),
    );
  },
};
