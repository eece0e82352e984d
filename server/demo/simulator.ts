// Simulated services for `pulseboard demo`: statuses that drift between states, latency/throughput
// metrics and the odd log event, published through the same publisher scripts use; on `main`, plus a
// couple of services and a metric on each extra board (docs/events.md, "Boards").
import type { Publisher } from '../../shared/publisher.ts';
import type { StatusInput } from '../../shared/events.ts';

interface SimulatedService {
  service: string;
  group: string;
  state: StatusInput['state'];
  /** Absent: `main`. */
  board?: string;
}

/** The services every simulator starts from; each simulator works on its own copy. */
const INITIAL_SERVICES: readonly Readonly<SimulatedService>[] = [
  { service: 'api', group: 'edge', state: 'ok' },
  { service: 'web', group: 'edge', state: 'ok' },
  { service: 'auth', group: 'edge', state: 'ok' },
  { service: 'postgres', group: 'data', state: 'ok' },
  { service: 'redis', group: 'data', state: 'ok' },
  { service: 'search', group: 'data', state: 'ok' },
  { service: 'billing', group: 'jobs', state: 'ok' },
  { service: 'mailer', group: 'jobs', state: 'ok' },
];

const MESSAGES: Record<StatusInput['state'], string> = {
  ok: 'all checks passing',
  degraded: 'p99 latency above 800 ms',
  down: 'health check failing',
  maintenance: 'planned maintenance window',
};

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

export interface Simulator {
  stop(): void;
}

/** Publishes a tick of simulated data every `intervalMs`; errors (Redis away) are reported, not thrown. */
export function startSimulator(
  publisher: Publisher,
  options: {
    intervalMs?: number;
    onError?: (error: unknown) => void;
    /** Boards besides `main` to simulate (they must exist). Default none. */
    boards?: readonly string[];
  } = {},
): Simulator {
  const intervalMs = options.intervalMs ?? 1000;
  const boards = options.boards ?? [];
  // Own state per simulator: a second demo (or test) in the same process starts from all-ok again.
  const services: SimulatedService[] = [
    ...INITIAL_SERVICES.map((service) => ({ ...service })),
    ...boards.flatMap((board) =>
      ['gateway', 'worker'].map((service) => ({ service, group: board, state: 'ok' as const, board })),
    ),
  ];
  const onBoard = (service: SimulatedService) => (service.board ? { board: service.board } : {});
  let tick = 0;
  let latency = 120;

  async function publishTick(): Promise<void> {
    tick += 1;
    latency = Math.max(20, latency + (Math.random() - 0.5) * 40);
    await publisher.publish({
      type: 'metrics',
      points: [
        { name: 'api.latency', value: Math.round(latency * 10) / 10, unit: 'ms' },
        {
          name: 'api.rps',
          value: Math.round(800 + Math.sin(tick / 20) * 300 + Math.random() * 50),
          unit: 'req/s',
        },
        { name: 'queue.depth', value: Math.max(0, Math.round(40 + Math.sin(tick / 7) * 35)), unit: 'jobs' },
        { name: 'cpu.web-1', value: Math.round(35 + Math.random() * 30), unit: '%' },
      ],
    });
    for (const board of boards) {
      const value = Math.round(200 + Math.sin(tick / 15) * 80 + Math.random() * 20);
      await publisher.publish({ type: 'metric', board, name: 'rps', value, unit: 'req/s' });
    }
    if (tick === 1) {
      for (const service of services) {
        await publisher.publish({
          type: 'status',
          ...onBoard(service),
          service: service.service,
          group: service.group,
          state: service.state,
          message: MESSAGES[service.state],
          ttl: 120,
        });
      }
    }
    if (tick % 5 === 0) {
      const service = pick(services);
      const next =
        service.state === 'ok' ? pick(['ok', 'ok', 'degraded', 'down', 'maintenance'] as const) : 'ok';
      if (next !== service.state) {
        service.state = next;
        await publisher.publish({
          type: 'status',
          ...onBoard(service),
          service: service.service,
          group: service.group,
          state: next,
          message: MESSAGES[next],
          ttl: 120,
        });
        const level = next === 'down' ? 'error' : next === 'ok' ? 'info' : 'warn';
        await publisher.publish({
          type: 'event',
          ...onBoard(service),
          level,
          service: service.service,
          title: `${service.service} is ${next}`,
          text: MESSAGES[next],
        });
      }
    }
  }

  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    publishTick()
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
