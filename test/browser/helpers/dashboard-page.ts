// What a person does and sees on the pages, in one place: logging in through the form, reading tiles,
// the connection state and the event log.
import type { Locator, Page } from 'playwright-core';

/**
 * Opens `path` (default: the main board's view), logs in on the page it redirects to, and returns there;
 * then waits for the stream to be live unless `live` is false (a page that opens no stream).
 */
export async function logInThroughForm(
  page: Page,
  baseUrl: string,
  username: string,
  password: string,
  path = '/b/main',
  live = true,
) {
  await page.goto(`${baseUrl}${path}`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${baseUrl}${path}`);
  if (live) await waitForLive(page);
}

export function tile(page: Page, service: string): Locator {
  return page.locator('.tile', { has: page.locator('.tile-name', { hasText: new RegExp(`^${service}$`) }) });
}

export function connectionLabel(page: Page): Locator {
  return page.locator('#connection-label');
}

export async function waitForLive(page: Page, timeout = 10_000): Promise<void> {
  await connectionLabel(page)
    .filter({ hasText: /^Live$/ })
    .waitFor({ timeout });
}

export function eventTitles(page: Page): Promise<string[]> {
  return page.locator('#event-log .event-title').allTextContents();
}
