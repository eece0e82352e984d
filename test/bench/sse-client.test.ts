// The bench's raw-socket SSE client must count exactly what a server sent, however TCP splits it: the
// bench's loss and duplicate figures rest on it.
import { expect } from 'chai';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { DELIVERIES, FRAMES, LAG_OFFSET, LATENCY_OFFSET, SLOT_COUNT } from '../../bench/driver-layout.ts';
import { SharedHistogram, summarize } from '../../bench/histogram.ts';
import { SseClient } from '../../bench/sse-client.ts';

const frame = (seq: number, idSeq = seq) =>
  `id: 1700000000000-${idSeq}\nevent: metric\ndata: {"type":"metric","name":"bench.value","value":${seq},"unit":"n","ts":${Date.now() - 5},"id":"1700000000000-${idSeq}"}\n\n`;

interface Response {
  head: string;
  pieces: string[];
  /** Close the connection after the last piece. */
  end?: boolean;
}

async function writePieces(socket: net.Socket, response: Response): Promise<void> {
  for (const piece of response.pieces) {
    await new Promise((resolve) => setTimeout(resolve, 3));
    socket.write(piece);
  }
  if (response.end) socket.end();
}

/** A server that answers its n-th connection with responses[n], writing the pieces a few ms apart. */
async function serve(responses: Response[]): Promise<{ port: number; requests: string[]; close(): void }> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const response = responses[requests.length]!;
    socket.once('data', (request) => {
      requests.push(request.toString('latin1'));
      socket.write(response.head);
      // Cannot reject: a write to a closed socket reports on the socket, it does not throw.
      void writePieces(socket, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

function chunked(body: string): string {
  return `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`;
}

/** Splits a string into pieces of `size` characters, cutting through framing and frames alike. */
function cut(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let index = 0; index < text.length; index += size) pieces.push(text.slice(index, index + size));
  return pieces;
}

function newClient(port: number) {
  const counters = new Int32Array(new SharedArrayBuffer(SLOT_COUNT * 4));
  const context = {
    host: '127.0.0.1',
    port,
    counters,
    latency: new SharedHistogram(counters, LATENCY_OFFSET),
    ingestLag: new SharedHistogram(counters, LAG_OFFSET),
    epochMs: Date.now(),
    maxSeq: 100,
  };
  const closes: SseClient[] = [];
  const client = new SseClient(context, 'sid=abc', '127.0.0.1', (closed) => closes.push(closed));
  return { client, counters, closes };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('bench SSE client', () => {
  it('counts events, warm-up and duplicates through chunked framing cut at every odd place', async () => {
    const body = [': hello\n\n', frame(0), frame(1), frame(2), 'retry: 100\n\n', frame(2, 3), frame(3, 4)]
      .map(chunked)
      .join('');
    const server = await serve([
      { head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', pieces: cut(body, 7) },
    ]);
    const { client, counters } = newClient(server.port);
    try {
      await client.connect(false);
      await until(() => Atomics.load(counters, FRAMES) === 5);
      expect(client.unique).to.equal(3);
      expect(client.duplicates).to.equal(1);
      expect(client.idRegressions).to.equal(0);
      expect(Atomics.load(counters, DELIVERIES)).to.equal(4); // warm-up (value 0) not measured
      const latency = summarize([new SharedHistogram(counters, LATENCY_OFFSET).snapshot()]);
      expect(latency.count).to.equal(4);
      expect(latency.p50Ms).to.be.within(4, 1000);
      expect(server.requests[0]).to.match(/^GET \/events HTTP\/1\.1\r\n/);
      expect(server.requests[0]).to.include('Cookie: sid=abc\r\n');
      expect(server.requests[0]).not.to.include('Last-Event-ID');
    } finally {
      client.drop();
      server.close();
    }
  });

  it('reads a close-delimited body and resumes with the last id it received', async () => {
    const server = await serve([
      {
        head: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n',
        pieces: [frame(1) + frame(2).slice(0, 20), frame(2).slice(20)],
        end: true,
      },
      { head: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', pieces: [frame(3)] },
    ]);
    const { client, closes } = newClient(server.port);
    try {
      await client.connect(false);
      await until(() => client.unique === 2 && closes.length === 1);
      await client.connect(true);
      await until(() => client.unique === 3);
      expect(server.requests[1]).to.include('Last-Event-ID: 1700000000000-2\r\n');
      expect(client.duplicates).to.equal(0);
    } finally {
      client.drop();
      server.close();
    }
  });

  it('resumes a stream of several boards with the whole cursor of its last frame, counting no regression across boards', async () => {
    // Two boards' ids interleave: 1700000000001-0 on b02 comes after 1700000000001-5 on b01.
    const boardFrame = (seq: number, board: string, id: string, cursor: string) =>
      `id: ${cursor}\nevent: metric\ndata: {"id":"${id}","board":"${board}","ts":${Date.now() - 5},"type":"metric","name":"bench.value","value":${seq},"unit":"n"}\n\n`;
    const server = await serve([
      {
        head: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n',
        pieces: [
          boardFrame(1, 'b01', '1700000000001-5', 'b01:1700000000001-5,b02:1700000000000-0'),
          boardFrame(2, 'b02', '1700000000001-0', 'b01:1700000000001-5,b02:1700000000001-0'),
        ],
        end: true,
      },
      { head: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', pieces: [] },
    ]);
    const { client, closes, counters } = newClient(server.port);
    try {
      await client.connect(false);
      await until(() => client.unique === 2 && closes.length === 1);
      expect(client.idRegressions).to.equal(0);
      const lag = summarize([new SharedHistogram(counters, LAG_OFFSET).snapshot()]);
      expect(lag.count).to.equal(2);
      await client.connect(true);
      await until(() => server.requests.length === 2);
      expect(server.requests[1]).to.include('Last-Event-ID: b01:1700000000001-5,b02:1700000000001-0\r\n');
    } finally {
      client.drop();
      server.close();
    }
  });

  it('refuses a stream that does not answer 200', async () => {
    const server = await serve([
      { head: 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n', pieces: [] },
    ]);
    const { client } = newClient(server.port);
    try {
      let error: unknown;
      await client.connect(false).catch((caught: unknown) => (error = caught));
      expect(String(error)).to.include('401');
    } finally {
      client.drop();
      server.close();
    }
  });
});
