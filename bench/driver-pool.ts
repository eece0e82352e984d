// The load driver as the bench sees it: one or more driver processes (driver.ts), each with its worker
// threads, and the sums of their counters and histograms. Clients are spread over the processes and
// over loopback source addresses 127.0.<block>.1..127.0.<block>.N so no source address runs out of ports.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DELIVERIES, ERRORS, FRAMES, LAST_RECEIVE_MS, OPEN, RECONNECTS, RESUMED } from './driver-layout.ts';
import type { DriverCommand, DriverResult, DriverStats } from './driver.ts';
import type { ClientTotals, ClientSpec } from './driver-thread.ts';
import { stopChild, trackChild } from './processes.ts';

/** Streams per driver process: below the 20,000 open files one process may have, with room to spare. */
export const STREAMS_PER_DRIVER = 12_500;
/** Streams per loopback source address (each address has ~28,000 ephemeral ports). */
const STREAMS_PER_ADDRESS = 5000;

export interface PoolOptions {
  host: string;
  port: number;
  streams: number;
  threadsPerDriver: number;
  epochMs: number;
  maxSeq: number;
  /** The last byte of the first source address, 127.0.<addressBlock>.<firstAddress>; default 1. */
  firstAddress?: number;
  /**
   * The third byte of the source addresses; default 0. The bench gives every measured run a block of its
   * own, so no run finds another's closed connections in TIME_WAIT on its addresses (docs/performance.md,
   * "Source addresses").
   */
  addressBlock?: number;
}

export interface PoolStats {
  deliveries: number;
  /** Every event frame, warm-up included. */
  frames: number;
  lastReceiveMs: number;
  open: number;
  reconnects: number;
  errors: number;
  resumed: number;
  latency: number[][];
  ingestLag: number[][];
}

interface Driver {
  child: ChildProcess;
  pending: Map<number, { resolve: (result: DriverResult) => void; reject: (error: Error) => void }>;
  nextId: number;
}

const DRIVER_ENTRY = fileURLToPath(new URL('./driver.ts', import.meta.url));

function startDriver(): Driver {
  const child = fork(DRIVER_ENTRY, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  trackChild(child);
  const driver: Driver = { child, pending: new Map(), nextId: 1 };
  child.on('message', (message: { id: number; result?: DriverResult; error?: string }) => {
    const waiter = driver.pending.get(message.id);
    driver.pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.result!);
  });
  child.on('exit', (code, signal) => {
    for (const waiter of driver.pending.values()) {
      waiter.reject(new Error(`driver process exited (${signal ?? code})`));
    }
    driver.pending.clear();
  });
  return driver;
}

function ask(driver: Driver, command: DriverCommand): Promise<DriverResult> {
  return new Promise((resolve, reject) => {
    const id = driver.nextId;
    driver.nextId += 1;
    driver.pending.set(id, { resolve, reject });
    driver.child.send({ id, command });
  });
}

export class DriverPool {
  private constructor(
    private readonly drivers: Driver[],
    private readonly options: PoolOptions,
  ) {}

  static async start(options: PoolOptions): Promise<DriverPool> {
    const count = Math.max(1, Math.ceil(options.streams / STREAMS_PER_DRIVER));
    const drivers = Array.from({ length: count }, startDriver);
    const pool = new DriverPool(drivers, options);
    try {
      const { host, port, epochMs, maxSeq } = options;
      await pool.all(() => ({
        type: 'start',
        host,
        port,
        epochMs,
        maxSeq,
        threads: options.threadsPerDriver,
      }));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  private async all(command: (index: number) => DriverCommand): Promise<DriverResult[]> {
    return Promise.all(this.drivers.map((driver, index) => ask(driver, command(index))));
  }

  /** The driver processes (their threads included), to measure what the load itself costs. */
  get pids(): number[] {
    return this.drivers.flatMap((driver) => (driver.child.pid === undefined ? [] : [driver.child.pid]));
  }

  /** Opens every stream (cookies round-robin); resolves with the failures once all have answered. */
  async open(
    cookies: readonly string[],
    concurrency: number,
  ): Promise<{ failures: number; firstError?: string }> {
    const specs = this.specs(cookies, this.options.streams, this.options.firstAddress ?? 1);
    return this.send('open', specs, concurrency);
  }

  /**
   * Opens `streams` more streams from 127.0.<block>.<firstAddress>… and closes them once all have
   * answered: the bench's warm-up runs through the threads that then open the measured streams, so
   * these do not meet the server with client code not yet compiled (docs/performance.md, "Warm-up").
   * Their failed attempts count in `errors`.
   */
  async warm(
    cookies: readonly string[],
    streams: number,
    concurrency: number,
    firstAddress: number,
  ): Promise<{ failures: number; firstError?: string }> {
    return this.send('warm', this.specs(cookies, streams, firstAddress), concurrency);
  }

  /** `streams` client specs, spread over the drivers, the cookies and the source addresses from `first`. */
  private specs(cookies: readonly string[], streams: number, first: number): ClientSpec[][] {
    const addresses = Math.max(1, Math.ceil(streams / STREAMS_PER_ADDRESS));
    const block = this.options.addressBlock ?? 0;
    const specs: ClientSpec[][] = this.drivers.map(() => []);
    for (let index = 0; index < streams; index += 1) {
      const cookie = cookies.length > 0 ? cookies[index % cookies.length] : undefined;
      const spec: ClientSpec = { localAddress: `127.0.${block}.${first + (index % addresses)}` };
      if (cookie !== undefined) spec.cookie = cookie;
      specs[index % this.drivers.length]!.push(spec);
    }
    return specs;
  }

  private async send(
    type: 'open' | 'warm',
    specs: ClientSpec[][],
    concurrency: number,
  ): Promise<{ failures: number; firstError?: string }> {
    const lanes = Math.max(1, Math.ceil(concurrency / this.drivers.length));
    return merge(await this.all((index) => ({ type, clients: specs[index]!, concurrency: lanes })));
  }

  /** Drops every stream at once and reopens it with Last-Event-ID. */
  async storm(concurrency: number): Promise<{ failures: number; firstError?: string }> {
    const lanes = Math.max(1, Math.ceil(concurrency / this.drivers.length));
    return merge(await this.all(() => ({ type: 'storm', concurrency: lanes })));
  }

  async stats(): Promise<PoolStats> {
    const results = (await this.all(() => ({ type: 'stats' }))).map((result) => result.stats!);
    const sum = (slot: number) =>
      results.reduce((total, stats: DriverStats) => total + stats.counters[slot]!, 0);
    return {
      deliveries: sum(DELIVERIES),
      frames: sum(FRAMES),
      lastReceiveMs: Math.max(...results.map((stats) => stats.counters[LAST_RECEIVE_MS]!)),
      open: sum(OPEN),
      reconnects: sum(RECONNECTS),
      errors: sum(ERRORS),
      resumed: sum(RESUMED),
      latency: results.map((stats) => stats.latency),
      ingestLag: results.map((stats) => stats.ingestLag),
    };
  }

  /** Every driver process's per-event timeline slots (bench/timeline.ts: mergeTimelines). */
  async timelines(): Promise<number[][]> {
    return (await this.all(() => ({ type: 'timeline' }))).map((result) => result.timeline ?? []);
  }

  /** Per-client loss over [firstSeq, lastSeq] and duplicates, summed over every client. */
  async totals(firstSeq: number, lastSeq: number): Promise<ClientTotals> {
    const parts = (await this.all(() => ({ type: 'report', firstSeq, lastSeq }))).map(
      (result) => result.totals!,
    );
    return parts.reduce((sum, part) => ({
      clients: sum.clients + part.clients,
      lost: sum.lost + part.lost,
      clientsWithLoss: sum.clientsWithLoss + part.clientsWithLoss,
      maxLostPerClient: Math.max(sum.maxLostPerClient, part.maxLostPerClient),
      duplicates: sum.duplicates + part.duplicates,
      idRegressions: sum.idRegressions + part.idRegressions,
      unique: sum.unique + part.unique,
    }));
  }

  async close(): Promise<void> {
    await Promise.all(
      this.drivers.map(async (driver) => {
        if (driver.child.exitCode === null) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 5000)));
          await Promise.race([ask(driver, { type: 'close' }).catch(() => undefined), timeout]);
          clearTimeout(timer);
        }
        await stopChild(driver.child, 'SIGKILL', 0);
      }),
    );
  }
}

function merge(results: DriverResult[]): { failures: number; firstError?: string } {
  const firstError = results.find((result) => result.firstError)?.firstError;
  const failures = results.reduce((sum, result) => sum + result.failures, 0);
  return firstError === undefined ? { failures } : { failures, firstError };
}
