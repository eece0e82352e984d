// The wire of `GET /status/<board>/events` (docs/status-pages.md, "What is shown"): the only place a
// status envelope becomes public text, and it copies four fields, so nothing else of an event (its group,
// ttl, board) and no other event type can ever reach a public frame.
import { compareStreamIds, type StatusEnvelope } from '../../shared/events.ts';
import type { PublicSnapshot, PublicStatus } from '../../shared/status-page.ts';

/** The public part of a status report: service, state, message, since (and its id, for ordering). */
export function publicStatusOf(envelope: StatusEnvelope): PublicStatus {
  return {
    service: envelope.service,
    state: envelope.state,
    ...(envelope.message === undefined ? {} : { message: envelope.message }),
    since: envelope.ts,
    id: envelope.id,
  };
}

/** One live change; encoded once per event per worker and written to every stream of the board. */
export function encodePublicStatus(status: PublicStatus): Buffer {
  return Buffer.from(`id: ${status.id}\nevent: status\ndata: ${JSON.stringify(status)}\n\n`);
}

/** Every shown service's current state; the client replaces what it had with it. */
export function encodePublicSnapshot(snapshot: PublicSnapshot): Buffer {
  const newest = snapshot.statuses.reduce<string | undefined>(
    (max, { id }) => (max === undefined || compareStreamIds(id, max) > 0 ? id : max),
    undefined,
  );
  const idLine = newest === undefined ? '' : `id: ${newest}\n`;
  return Buffer.from(`${idLine}event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
}
