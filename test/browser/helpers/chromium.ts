// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, and a watch on every page
// for what must never happen: CSP violations, console errors, uncaught exceptions, dialogs.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium, else Ubuntu's (a snap); bin/preflight.js (`npm test`) looks in the same places. */
const CHROMIUM_PLACES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/snap/bin/chromium'];
export const CHROMIUM_PATH =
  process.env.CHROMIUM_PATH ?? CHROMIUM_PLACES.find((place) => existsSync(place)) ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/** Problems seen on watched pages; a test asserts the list is empty. */
export interface PageProblems {
  readonly list: string[];
  /** The list without Chromium's "Failed to load resource" lines for these statuses (a test's expected 401s). */
  except(statuses: readonly number[]): string[];
  /** Starts recording a page's problems (call before it loads anything). */
  watch(page: Page): Promise<void>;
}

export function pageProblems(): PageProblems {
  const list: string[] = [];
  return {
    list,
    except: (statuses) =>
      list.filter(
        (problem) =>
          !statuses.some((status) =>
            problem.includes(`Failed to load resource: the server responded with a status of ${status} `),
          ),
      ),
    async watch(page) {
      // Registered through the DevTools protocol before any page script, so the page's CSP does not apply.
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (event) => {
          console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`);
        });
      });
      page.on('console', (message) => {
        if (message.type() === 'error') list.push(`console error on ${page.url()}: ${message.text()}`);
      });
      page.on('pageerror', (error) => list.push(`uncaught on ${page.url()}: ${error.message}`));
      page.on('dialog', (dialog) => {
        list.push(`dialog opened on ${page.url()}: ${dialog.type()} ${dialog.message()}`);
        void dialog.dismiss();
      });
    },
  };
}

/** A new page in `context`, watched for problems. */
export async function watchedPage(context: BrowserContext, problems: PageProblems): Promise<Page> {
  const page = await context.newPage();
  await problems.watch(page);
  return page;
}

/** How long a test's context may take to close before the suite moves on without it. */
const CONTEXT_CLOSE_MS = 15_000;

/**
 * Closes a test's browser context, bounded: once in two clean-clone runs, Chromium never answered the
 * close of a context whose pages had just left for the login page (the test itself had passed), and the
 * hook timed out. Past the bound the context is left to `browser.close()` in the suite's `after`, which
 * ends every context; the warning says so.
 */
export async function closeContext(context: BrowserContext | undefined): Promise<void> {
  if (context === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    context.close().then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), CONTEXT_CLOSE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!closed)
    process.stderr.write(
      `      (browser context still closing after ${CONTEXT_CLOSE_MS} ms; left to browser.close())\n`,
    );
}
