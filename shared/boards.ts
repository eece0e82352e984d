// Boards (docs/events.md, "Boards"): named spaces of one installation, each with its own current state,
// history window, event log and ids. The slug rule and the resume cursor live here, shared by the server,
// the CLI, scripts and the browser.
import * as z from 'zod';

/** The board of an event that names none, and of every installation that existed before boards. */
export const DEFAULT_BOARD = 'main';

/** Board names: lower-case slugs, 1..64 of `a-z 0-9 -`. No `:`, `,` or `{}`, so they fit keys and cursors. */
export const boardSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9-]+$/, 'must be a board name: 1..64 of a-z 0-9 -');

/** Most boards one stream may carry: every frame's id names each of them (docs/events.md, "Resume"). */
export const MAX_BOARDS_PER_STREAM = 64;
