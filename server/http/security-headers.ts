// Security headers (docs/design.md, "Sessions, users, security") with koa-helmet: a strict CSP (no inline
// script or style: the client is bundled into /assets), frame-ancestors 'none', nosniff, a referrer
// policy, and HSTS on HTTPS requests only (HSTS over plain http is ignored by browsers and would pin a
// host someone later serves over http). Mounted outermost, before the error middleware, so error
// answers (401, 404, 500) carry the same headers as a 200.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import helmetForNode from 'helmet';
import type { Context, Next } from 'koa';
import helmet from 'koa-helmet';

const HSTS_MAX_AGE_SECONDS = 365 * 24 * 60 * 60;

const CSP_DIRECTIVES = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  // helmet's default allows 'unsafe-inline' and https: for styles; ours allows neither.
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'worker-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

function helmetOptions(https: boolean) {
  return {
    // useDefaults: false, so no upgrade-insecure-requests (it breaks Safari on http://localhost).
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    strictTransportSecurity: https ? { maxAge: HSTS_MAX_AGE_SECONDS, includeSubDomains: true } : false,
    xFrameOptions: { action: 'deny' as const },
    referrerPolicy: { policy: 'same-origin' as const },
  };
}

function helmetFor(https: boolean) {
  return helmet(helmetOptions(https));
}

/**
 * The headers `securityHeaders` sets, as a plain object, for answers written without Koa (the stream fast
 * path, docs/architecture.md): helmet run once on a stand-in response that records them. Its values
 * depend on nothing in the request but whether it came over HTTPS.
 */
export function securityHeaderValues(https: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name] = typeof value === 'object' ? [...value] : value;
    },
    removeHeader(name: string) {
      Reflect.deleteProperty(headers, name);
    },
    getHeader(name: string) {
      return headers[name];
    },
  };
  let done = false;
  helmetForNode(helmetOptions(https))(
    {} as IncomingMessage,
    recorder as unknown as ServerResponse,
    (error?: unknown) => {
      if (error !== undefined && error !== null)
        throw error instanceof Error ? error : new Error(String(error));
      done = true;
    },
  );
  if (!done) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/**
 * Headers that act only on a document, a worker or a redirect (docs/security.md, "Security headers"): the
 * event stream's 200 is none of these (a `text/event-stream`, never sniffed: nosniff), so they are left off
 * it. Its errors, and every other answer, keep the full set. Lower case; compared case-insensitively.
 */
const DOCUMENT_ONLY_HEADERS: ReadonlySet<string> = new Set([
  'content-security-policy',
  'cross-origin-opener-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
]);

/**
 * `headers` (the security headers, on the Koa path with the session cookie) without the ones that act only
 * on documents: what the event stream's 200 carries of them (nosniff, CORP, HSTS over HTTPS, Set-Cookie).
 */
export function streamHeadersOf(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!DOCUMENT_ONLY_HEADERS.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}

/** The document-only headers' names (see `streamHeadersOf`), for a HEAD answered by Koa. */
export function documentOnlyHeaderNames(): Iterable<string> {
  return DOCUMENT_ONLY_HEADERS;
}

export function securityHeaders() {
  const overHttps = helmetFor(true);
  const overHttp = helmetFor(false);
  return function setSecurityHeaders(ctx: Context, next: Next): Promise<unknown> {
    return ctx.secure ? overHttps(ctx, next) : overHttp(ctx, next);
  };
}
