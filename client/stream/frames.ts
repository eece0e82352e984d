// The stream's control frames (docs/events.md, "Boards"): `event: reset` names the board whose history the
// server could not resume from; `event: boards` lists boards that left the stream (access revoked, board
// removed); `event: heartbeat` says the stream is alive and names its period (docs/events.md, "Heartbeats").
// Parsed like every other boundary; a frame that does not parse is ignored.
import * as z from 'zod';
import { boardSchema } from '../../shared/boards.ts';

const resetFrameSchema = z.object({ board: boardSchema.optional() });
const boardsFrameSchema = z.object({ removed: z.array(boardSchema) });
const heartbeatFrameSchema = z.object({ every: z.number().int().positive().max(3_600_000) });

/** A frame's data as JSON; undefined when it is not. */
export function parseJsonFrame(data: unknown): unknown {
  if (typeof data !== 'string') return undefined;
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** The board a `reset` frame names; undefined: every board of the stream (a frame without one). */
export function parseResetFrame(data: unknown): string | undefined {
  return resetFrameSchema.safeParse(parseJsonFrame(data)).data?.board;
}

/** The boards a `boards` frame says were removed from the stream. */
export function parseBoardsFrame(data: unknown): string[] {
  return boardsFrameSchema.safeParse(parseJsonFrame(data)).data?.removed ?? [];
}

/** The heartbeat period a `heartbeat` frame names (ms). */
export function parseHeartbeatFrame(data: unknown): number | undefined {
  return heartbeatFrameSchema.safeParse(parseJsonFrame(data)).data?.every;
}
