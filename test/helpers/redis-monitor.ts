// Every command a Redis server runs while a test looks (MONITOR on a raw socket): for tests that prove a
// path never reads some key, e.g. a resume replayed from a worker's memory instead of the log.
import { connect } from 'node:net';
import { until } from './sse-client.ts';

export interface CommandMonitor {
  /**
   * Marks the end with an `ECHO` sent through `client`, waits until the monitor has seen it (so every
   * command before it is in), closes the monitor and returns what it saw.
   */
  stop(client: { sendCommand(args: string[]): Promise<unknown> }): Promise<string>;
  /** Closes the monitor without waiting (a test that failed before `stop`). */
  close(): void;
}

export async function monitorCommands(url: string): Promise<CommandMonitor> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  let seen = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (seen += chunk));
  socket.write('MONITOR\r\n');
  try {
    await until(() => seen.startsWith('+OK'), 5000, 'MONITOR');
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return {
    async stop(client) {
      try {
        await client.sendCommand(['ECHO', 'done-monitoring']);
        await until(() => seen.includes('done-monitoring'), 5000, 'the end mark');
        return seen;
      } finally {
        socket.destroy();
      }
    },
    close: () => socket.destroy(),
  };
}
