// Public status pages (docs/status-pages.md): what an admin chose to show of a board, and the only fields
// that ever leave the server for it. Shared by the server (settings, page, stream, badge), the CLI and the
// browser.
import * as z from 'zod';
import { STATE_SEVERITY } from './api.ts';
import { nameSchema, STATUS_STATES, streamIdSchema } from './events.ts';

/** Most services one status page shows. */
export const MAX_PUBLIC_SERVICES = 100;
/** Most origins that may frame a board's embeddable page. */
export const MAX_EMBED_ORIGINS = 20;

/**
 * An origin allowed to frame the embeddable page, as CSP `frame-ancestors` takes it: a scheme, a host (its
 * first label may be `*` for any subdomain) and an optional port, nothing else. No path, space, `;` or
 * `,`, so it cannot add a directive to the header.
 */
export const embedOriginSchema = z
  .string()
  .max(200)
  .regex(
    /^https?:\/\/(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/,
    'must be an origin like https://example.com or https://*.example.com (scheme, host, optional port)',
  );

/** A board's public settings, stored as JSON under its `publicStatus` key; no key means not public. */
export const publicSettingsSchema = z.object({
  /** The services shown, in the admin's order; none is a page with no service (an overall "no data"). */
  services: z.array(nameSchema).max(MAX_PUBLIC_SERVICES),
  /** Origins that may frame `/status/<board>/embed`; empty: no site may. */
  embedOrigins: z.array(embedOriginSchema).max(MAX_EMBED_ORIGINS),
  /** When the settings were last written (epoch ms). */
  updatedAt: z.number(),
});
export type PublicSettings = z.infer<typeof publicSettingsSchema>;

/** One service on a status page: nothing but its state, message and since (and the id for ordering). */
export const publicStatusSchema = z.object({
  service: nameSchema,
  state: z.enum(STATUS_STATES),
  message: z.string().max(500).optional(),
  /** Epoch ms of the report of this state. */
  since: z.number(),
  /** The board log id of that report: newer wins, so a late frame never rolls a service back. */
  id: streamIdSchema,
});
export type PublicStatus = z.infer<typeof publicStatusSchema>;

export const OVERALL_STATES = [...STATE_SEVERITY, 'unknown'] as const;
export type OverallState = (typeof OVERALL_STATES)[number];

/** `event: snapshot` of `GET /status/<board>/events`: every shown service, in order (absent: no report yet). */
export const publicSnapshotSchema = z.object({
  services: z.array(nameSchema),
  statuses: z.array(publicStatusSchema),
});
export type PublicSnapshot = z.infer<typeof publicSnapshotSchema>;

/** The worst state among `states`; `unknown` when there is none. */
export function overallState(states: Iterable<string>): OverallState {
  const present = new Set(states);
  return STATE_SEVERITY.find((state) => present.has(state)) ?? 'unknown';
}

export const STATE_LABELS: Record<OverallState, string> = {
  ok: 'Operational',
  degraded: 'Degraded',
  down: 'Down',
  maintenance: 'Maintenance',
  unknown: 'No data',
};

export const OVERALL_LABELS: Record<OverallState, string> = {
  ok: 'All systems operational',
  degraded: 'Some systems degraded',
  down: 'Some systems down',
  maintenance: 'Maintenance in progress',
  unknown: 'No status reported yet',
};
