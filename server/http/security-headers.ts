// Security headers (docs/design.md, "Sessions, users, security") with koa-helmet: a strict CSP (no inline
// script or style: the client is bundled into /assets), frame-ancestors 'none', nosniff, a referrer
// policy, and HSTS on HTTPS requests only (HSTS over plain http is ignored by browsers and would pin a
// host someone later serves over http). Mounted outermost, before the error middleware, so error
// answers (401, 404, 500) carry the same headers as a 200.
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

function helmetFor(https: boolean) {
  return helmet({
    // useDefaults: false, so no upgrade-insecure-requests (it breaks Safari on http://localhost).
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    strictTransportSecurity: https ? { maxAge: HSTS_MAX_AGE_SECONDS, includeSubDomains: true } : false,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
  });
}

export function securityHeaders() {
  const overHttps = helmetFor(true);
  const overHttp = helmetFor(false);
  return function setSecurityHeaders(ctx: Context, next: Next): Promise<unknown> {
    return ctx.secure ? overHttps(ctx, next) : overHttp(ctx, next);
  };
}
