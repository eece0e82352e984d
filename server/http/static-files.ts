// Serves the bundled client from build/public (made by `npm run build`).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';
import send from 'koa-send';
import { isDashboardPage } from '../auth/paths.ts';

export const PUBLIC_DIR = fileURLToPath(new URL('../../build/public/', import.meta.url));

/** Pages by path; every other GET under /assets/ is a file of the bundle. */
const PAGES: Record<string, string> = { '/': 'index.html', '/login': 'login.html' };

export function staticFiles(root: string = PUBLIC_DIR) {
  return async function serveStatic(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    // A board's view, `/b/<board>`, is one page for every board, so a deep link or a reload works; the
    // page asks for the board's data, and access is checked there.
    const page = PAGES[ctx.path] ?? (isDashboardPage(ctx.path) ? 'board.html' : undefined);
    if (page) {
      ctx.set('Cache-Control', 'no-cache');
      await send(ctx, page, { root });
      return;
    }
    if (ctx.path.startsWith('/assets/')) {
      const file = path.posix.normalize(ctx.path.slice('/assets/'.length));
      await send(ctx, file, { root: path.join(root, 'assets'), maxage: 60 * 60 * 1000 });
      return;
    }
    return next();
  };
}
