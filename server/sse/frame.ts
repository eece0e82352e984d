// SSE wire format (WHATWG HTML, "Server-sent events", 9.2.6). Every field value written here is either a
// validated stream id, a fixed event name or single-line JSON, so no CR, LF or NUL can start a new field.
import type { Envelope } from '../../shared/events.ts';

export function encodeEvent(envelope: Envelope): Buffer {
  return Buffer.from(`id: ${envelope.id}\nevent: ${envelope.type}\ndata: ${JSON.stringify(envelope)}\n\n`);
}

/** Tells the client to drop its state and refetch the snapshot: its last id is older than the log. */
export function encodeReset(reason: string): Buffer {
  return Buffer.from(`event: reset\ndata: ${JSON.stringify({ reason })}\n\n`);
}

export function encodeRetry(retryMs: number): Buffer {
  return Buffer.from(`retry: ${Math.round(retryMs)}\n\n`);
}

export function encodeComment(text: string): Buffer {
  return Buffer.from(`: ${text.replace(/[\r\n\0]/g, ' ')}\n\n`);
}

export const HEARTBEAT_FRAME = encodeComment('heartbeat');
