// CSRF (docs/design.md): every state-changing request must come from our own origin (Origin header, or
// Sec-Fetch-Site: same-origin when a browser sends no Origin) and, when it rides on a session, carry the
// session's token in X-CSRF-Token. SameSite=Lax already keeps the cookie off cross-site POSTs; these
// checks also cover same-site attackers (a sibling subdomain) and old browsers.
// Token paths (/api/publish, /metrics) are exempt: they ignore cookies and need an Authorization header,
// which a cross-site page cannot make a browser send.
import { timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { ForbiddenError } from '../http/errors.ts';
import { getAuth } from './guard.ts';
import { isSessionless, isStateChanging } from './paths.ts';

const CSRF_HEADER = 'X-CSRF-Token';

export interface CsrfOptions {
  /**
   * Take the host from X-Forwarded-Host (with TRUST_PROXY) when comparing origins. Default false: the
   * Host header, which the browser sets and a proxy passes on, is what the page's origin was built from,
   * while X-Forwarded-Host could come from the client itself through a proxy that passes it along
   * (docs/security.md, "Hardening"; deploy/haproxy.cfg strips it). TRUST_FORWARDED_HOST=true.
   */
  trustForwardedHost?: boolean;
}

/** Our own origin as a browser names it: scheme (TRUST_PROXY honours X-Forwarded-Proto) and host. */
function ownOrigin(ctx: Context, options: CsrfOptions): string {
  const host = options.trustForwardedHost ? ctx.host : ctx.get('Host');
  return `${ctx.protocol}://${host}`;
}

/** Throws ForbiddenError unless the request says it comes from a page of our own origin. */
function checkSameOrigin(ctx: Context, options: CsrfOptions = {}): void {
  const origin = ctx.get('Origin');
  const fetchSite = ctx.get('Sec-Fetch-Site');
  // A browser that sends Fetch Metadata tells us the truth; anything but same-origin is refused.
  if (fetchSite && fetchSite !== 'same-origin') throw new ForbiddenError('cross-origin request refused');
  if (origin) {
    if (origin !== ownOrigin(ctx, options)) throw new ForbiddenError('cross-origin request refused');
    return;
  }
  if (fetchSite !== 'same-origin') throw new ForbiddenError('request origin unknown (send an Origin header)');
}

function tokensMatch(sent: string, expected: string): boolean {
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Runs after the guard: every unsafe request is same-origin, and a session's requests carry its token. */
export function csrfProtection(options: CsrfOptions = {}) {
  return async function checkCsrf(ctx: Context, next: Next): Promise<void> {
    if (!isStateChanging(ctx.method) || isSessionless(ctx.path)) return next();
    checkSameOrigin(ctx, options);
    const auth = getAuth(ctx);
    // /api/login needs no session (a logged-in user may log in again): the origin check is its defence.
    if (auth && ctx.path !== '/api/login' && !tokensMatch(ctx.get(CSRF_HEADER), auth.csrfToken)) {
      throw new ForbiddenError('missing or wrong X-CSRF-Token');
    }
    return next();
  };
}
