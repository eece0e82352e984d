// `GET /status/<board>/badge.svg` (docs/status-pages.md, "Badge"): the overall state as a flat badge for
// README files. The text is one of a few fixed labels, so nothing from the board reaches the SVG.
import { createHash } from 'node:crypto';
import type { OverallState } from '../../shared/status-page.ts';

const BADGE_TEXT: Record<OverallState, string> = {
  ok: 'operational',
  degraded: 'degraded',
  down: 'down',
  maintenance: 'maintenance',
  unknown: 'no data',
};

/** Dark enough for white text at 4.5:1 or more. */
const BADGE_COLOUR: Record<OverallState, string> = {
  ok: '#17713d',
  degraded: '#8a5d00',
  down: '#b42121',
  maintenance: '#3b4aa8',
  unknown: '#555b66',
};

const LABEL = 'status';
/** Width per character of 11 px Verdana-ish text, and padding: close enough for short fixed words. */
const CHAR_PX = 7;
const PAD_PX = 10;

export interface Badge {
  svg: string;
  etag: string;
}

export function renderBadge(state: OverallState): Badge {
  const text = BADGE_TEXT[state];
  const left = LABEL.length * CHAR_PX + PAD_PX;
  const right = text.length * CHAR_PX + PAD_PX;
  const width = left + right;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="${LABEL}: ${text}">`,
    `<title>${LABEL}: ${text}</title>`,
    `<rect width="${left}" height="20" fill="#555"/>`,
    `<rect x="${left}" width="${right}" height="20" fill="${BADGE_COLOUR[state]}"/>`,
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">`,
    `<text x="${left / 2}" y="14">${LABEL}</text>`,
    `<text x="${left + right / 2}" y="14">${text}</text>`,
    `</g></svg>`,
  ].join('');
  return { svg, etag: `"${createHash('sha256').update(svg).digest('base64url').slice(0, 16)}"` };
}
