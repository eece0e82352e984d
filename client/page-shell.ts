// What the overview and the board view share around their content: the session check that starts a
// page, leaving for the login page, _Log out_, and the browser's online state.
import type { SessionResponse } from '../shared/api.ts';
import { fetchSession, postLogout } from './http/api.ts';
import { goToLogin, type LoginReason } from './navigation.ts';
import type { StreamClient } from './stream/connect.ts';
import { setText } from './view/dom.ts';

export const RETRY_MAX_MS = 15_000;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits before retry `attempt` (0-based): 1 s, doubling up to 15 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, RETRY_MAX_MS);
}

/** The session, retried while the server cannot answer; a 401 sends the user to the login page. */
export async function loadSession(notice: HTMLElement): Promise<SessionResponse | undefined> {
  for (let attempt = 0; ; attempt += 1) {
    const result = await fetchSession();
    if (result.kind === 'ok') {
      notice.hidden = true;
      return result.value;
    }
    if (result.kind === 'unauthorized') {
      goToLogin(undefined);
      return undefined;
    }
    const waitMs = retryDelayMs(attempt);
    setText(notice, `Cannot start: ${result.message}. Retrying in ${Math.round(waitMs / 1000)} s…`);
    notice.hidden = false;
    await sleep(waitMs);
  }
}

/** Goes to the login page once, whatever asks first (the stream, a fetch, the logout button). */
export function leaver(): { leave(reason: LoginReason): void; readonly leaving: boolean } {
  let leaving = false;
  return {
    leave(reason) {
      if (leaving) return;
      leaving = true;
      goToLogin(reason);
    },
    get leaving() {
      return leaving;
    },
  };
}

/** _Log out_: ends the session on the server, then tells every tab (through the stream) and leaves. */
export function bindLogout(
  button: HTMLButtonElement,
  notice: HTMLElement,
  session: SessionResponse,
  stream: StreamClient,
  leave: (reason: LoginReason) => void,
): void {
  button.addEventListener('click', () => {
    void (async () => {
      button.disabled = true;
      const result = await postLogout(session.csrfToken);
      if (result.kind === 'failed') {
        setText(notice, `Logout failed: ${result.message}`);
        notice.hidden = false;
        button.disabled = false;
        return;
      }
      // After the server ended the session, so other tabs do not find it still valid at /login.
      stream.logout();
      leave('logged-out');
    })();
  });
}

/**
 * Reports the browser going on- and offline. (A page restored from the back/forward cache resumes its
 * stream: client/stream/page-lifecycle.ts.)
 */
export function watchBrowser(onOnlineChanged: (online: boolean) => void): void {
  addEventListener('online', () => onOnlineChanged(true));
  addEventListener('offline', () => onOnlineChanged(false));
  if (!navigator.onLine) onOnlineChanged(false);
}
