// The server-rendered status page (docs/status-pages.md, "What is shown"): complete without JavaScript,
// then taken over by client/status.ts, which reads the same markup and goes live. Every text from the
// board (title, service names, messages) is escaped; no inline script or style, so the strict CSP holds.
import {
  OVERALL_LABELS,
  overallState,
  STATE_LABELS,
  type OverallState,
  type PublicStatus,
} from '../../shared/status-page.ts';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}

/** `2026-12-02 05:41 UTC`: readable without JavaScript, whatever the reader's zone. */
export function formatUtc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

export interface StatusPageInput {
  board: string;
  title: string;
  /** The shown services, in order. */
  services: readonly string[];
  /** Their current states (a service with no report yet is absent). */
  statuses: readonly PublicStatus[];
  /** The compact variant meant for another site's frame. */
  embed: boolean;
  /** Server time of the render (epoch ms). */
  now: number;
}

function serviceItem(name: string, status: PublicStatus | undefined): string {
  const state: OverallState = status?.state ?? 'unknown';
  const message = status?.message ? `<p class="status-message">${escapeHtml(status.message)}</p>` : '';
  const since = status
    ? `<p class="status-since">since <time datetime="${new Date(status.since).toISOString()}">${formatUtc(status.since)}</time></p>`
    : '';
  const id = status ? ` data-id="${status.id}"` : '';
  return (
    `<li class="status-service" data-service="${escapeHtml(name)}" data-state="${state}"${id}>` +
    `<div class="status-row"><span class="status-dot" aria-hidden="true"></span>` +
    `<span class="status-name">${escapeHtml(name)}</span>` +
    `<span class="status-state">${STATE_LABELS[state]}</span></div>${message}${since}</li>`
  );
}

export function renderStatusPage(input: StatusPageInput): string {
  const byService = new Map(input.statuses.map((status) => [status.service, status]));
  const overall = overallState(input.statuses.map((status) => status.state));
  const title = escapeHtml(input.title);
  const items = input.services.map((name) => serviceItem(name, byService.get(name))).join('\n');
  const empty =
    input.services.length === 0 ? '<p class="status-empty">No services are shown here yet.</p>' : '';
  const events = `/status/${input.board}/events`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name="color-scheme" content="light dark" />
<title>${title} status</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml" />
<link rel="stylesheet" href="/assets/status.css" />
<script type="module" src="/assets/status.js"></script>
</head>
<body class="status-body${input.embed ? ' status-embed' : ''}">
<main id="status" class="status" data-board="${input.board}" data-events="${events}" data-rendered-at="${input.now}">
<header class="status-head">
<h1 class="status-title">${title}</h1>
<p id="status-overall" class="status-overall" data-state="${overall}" role="status" aria-live="polite"><span class="status-dot" aria-hidden="true"></span><span id="status-overall-label">${OVERALL_LABELS[overall]}</span></p>
<p id="status-updated" class="status-updated">As of <time datetime="${new Date(input.now).toISOString()}">${formatUtc(input.now)}</time></p>
</header>
<ul id="status-services" class="status-services" aria-label="Services">
${items}
</ul>
${empty}
<footer class="status-foot">Live status by pulseboard</footer>
</main>
</body>
</html>
`;
}

/** The one answer for a board that is unknown, not public, or not a board name at all. */
export const NOT_FOUND_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name="color-scheme" content="light dark" />
<title>No status page here</title>
<link rel="stylesheet" href="/assets/status.css" />
</head>
<body class="status-body">
<main class="status"><h1 class="status-title">No status page here</h1><p>There is no public status page at this address.</p></main>
</body>
</html>
`;
