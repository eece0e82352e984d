// SSE wire format (WHATWG HTML, "Server-sent events", 9.2.6). Every field value written here is either a
// resume cursor of validated board names and stream ids, a fixed event name or single-line JSON, so no CR,
// LF or NUL can start a new field.
import type { Envelope } from '../../shared/events.ts';

/** The part of an event's frame after its `id:` line; encoded once per event and shared by every stream. */
export function encodeEventBody(envelope: Envelope): Buffer {
  return Buffer.from(`event: ${envelope.type}\ndata: ${JSON.stringify(envelope)}\n\n`);
}

/** The `id:` line of a frame: the stream's resume cursor after the event (docs/events.md, "Resume"). */
export function encodeIdLine(cursorText: string): Buffer {
  return Buffer.from(`id: ${cursorText}\n`, 'latin1');
}

/** One whole event frame whose `id:` is `cursorText`. */
export function encodeEvent(envelope: Envelope, cursorText: string): Buffer {
  return Buffer.concat([encodeIdLine(cursorText), encodeEventBody(envelope)]);
}

/** Tells the client to drop its state of `board` and refetch its snapshot: its last id is older than the log. */
export function encodeReset(reason: string, board: string): Buffer {
  return Buffer.from(`event: reset\ndata: ${JSON.stringify({ reason, board })}\n\n`);
}

/**
 * Boards that left the stream (access revoked, board removed): no further events of them. The `id:` is
 * the narrowed cursor, so a reconnect no longer names them (docs/events.md, "Boards").
 */
export function encodeBoardsRemoved(removed: readonly string[], cursorText: string): Buffer {
  const idLine = cursorText === '' ? '' : `id: ${cursorText}\n`;
  return Buffer.from(`${idLine}event: boards\ndata: ${JSON.stringify({ removed })}\n\n`);
}

export function encodeRetry(retryMs: number): Buffer {
  return Buffer.from(`retry: ${Math.round(retryMs)}\n\n`);
}

export function encodeComment(text: string): Buffer {
  return Buffer.from(`: ${text.replace(/[\r\n\0]/g, ' ')}\n\n`);
}

/** Written to an idle stream when the worker cannot vouch for its events (Redis away): keeps proxies from closing it. */
export const HEARTBEAT_FRAME = encodeComment('heartbeat');

/**
 * Written to an idle stream while the worker's events flow: a named event, so a browser's EventSource sees
 * it (comments never reach scripts) and can say "updated N s ago" and show a stale banner when it stops
 * (docs/events.md, "Heartbeats"). It names its period; it has no `id:`, so it leaves the cursor alone.
 */
export function encodeHeartbeatEvent(everyMs: number): Buffer {
  return Buffer.from(`event: heartbeat\ndata: {"every":${Math.round(everyMs)}}\n\n`);
}

/**
 * The size line of an HTTP/1.1 chunk of `length` bytes (RFC 9112, 7.1): what Node's ServerResponse writes
 * before every body write of a chunked response. The hub frames a flush's bytes once as a chunk for every
 * connection of a group (server/sse/connection.ts writes it straight to the socket).
 */
export function encodeChunkHead(length: number): Buffer {
  return Buffer.from(`${length.toString(16)}\r\n`, 'latin1');
}

/** The CRLF that ends an HTTP/1.1 chunk's data. */
export const CHUNK_END = Buffer.from('\r\n', 'latin1');
