// The filter box: parsed as the user types (debounced), errors shown next to it, the applied filter
// kept in the URL (`?filter=`) so a link or a reload shows the same view.
import { parseFilter, type DashboardFilter } from '../state/filter.ts';
import { setText } from './dom.ts';

const DEBOUNCE_MS = 300;
export const FILTER_PARAM = 'filter';

/** The filter in the page's URL; an invalid one is ignored (and shown as typed). */
export function filterFromUrl(search: string): { text: string; filter: DashboardFilter | undefined } {
  const text = new URLSearchParams(search).get(FILTER_PARAM) ?? '';
  const parsed = parseFilter(text);
  return { text, filter: parsed.ok ? parsed.filter : undefined };
}

function writeUrl(filter: DashboardFilter): void {
  const url = new URL(location.href);
  if (filter.text) url.searchParams.set(FILTER_PARAM, filter.text);
  else url.searchParams.delete(FILTER_PARAM);
  history.replaceState(history.state, '', url);
}

export function bindFilterBox(
  form: HTMLFormElement,
  input: HTMLInputElement,
  error: HTMLElement,
  initialText: string,
  onChange: (filter: DashboardFilter) => void,
): void {
  input.value = initialText;
  let applied = parseFilter(initialText);
  let timer: ReturnType<typeof setTimeout> | undefined;

  const apply = () => {
    clearTimeout(timer);
    const parsed = parseFilter(input.value);
    input.setAttribute('aria-invalid', String(!parsed.ok));
    error.hidden = parsed.ok;
    if (!parsed.ok) {
      setText(error, parsed.error);
      return;
    }
    if (applied.ok && applied.filter.text === parsed.filter.text) return;
    applied = parsed;
    writeUrl(parsed.filter);
    onChange(parsed.filter);
  };
  if (!applied.ok) apply();
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(apply, DEBOUNCE_MS);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
}
