// Feeds the public status hub from the same event path as the private one (docs/status-pages.md, "Live
// updates"): the bus keeps one `EventDelivery`, the private hub, for positions and gap fills, and every
// event it delivers (live or replayed) and every reset also goes to the public hub.
import type { Envelope } from '../../shared/events.ts';
import type { EventDelivery } from '../sse/delivery.ts';

/** What the public side takes from the event path. */
export interface EventListener {
  deliver(envelope: Envelope): void;
  resetBoard(board: string): void;
}

/** `primary`, with every delivered event and reset also handed to `also`. */
export function alsoDeliverTo(primary: EventDelivery, also: EventListener): EventDelivery {
  return {
    deliver(envelope) {
      primary.deliver(envelope);
      also.deliver(envelope);
    },
    positions: () => primary.positions(),
    knowsBoard: (board) => primary.knowsBoard(board),
    startBoard: (board, lastId) => primary.startBoard(board, lastId),
    resetBoard(board, reason, options) {
      primary.resetBoard(board, reason, options);
      also.resetBoard(board);
    },
  };
}
