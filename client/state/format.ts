// Text for people: ages, clock times and metric values with their units. Pure, so the reducer tests and
// the DOM share one formatting.

/** Up to three significant digits, without trailing zeros: 1234 -> "1234", 12.345 -> "12.3". */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100 || Number.isInteger(value)) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}

/** A duration as one or two units: "45s", "12m", "3h 5m", "2d 4h". */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days}d` : `${days}d ${hours % 24}h`;
}

const twoDigits = (value: number) => String(value).padStart(2, '0');

/** Local wall-clock time to the minute, 24-hour: "14:03" (chart axes). */
export function formatHourMinute(epochMs: number): string {
  const date = new Date(epochMs);
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}`;
}

/** Local wall-clock time, 24-hour: "14:03:22". */
export function formatClock(epochMs: number): string {
  const date = new Date(epochMs);
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
}

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const SI = ['', 'k', 'M', 'G', 'T', 'P'];

function scaled(value: number, base: number, prefixes: readonly string[]): [number, string] {
  let index = 0;
  let scaledValue = value;
  while (Math.abs(scaledValue) >= base && index < prefixes.length - 1) {
    scaledValue /= base;
    index += 1;
  }
  return [scaledValue, prefixes[index] ?? ''];
}

/**
 * A value with its unit, scaled so the number stays short: `ms` turns into s and min, `s` into min and h,
 * bytes take binary prefixes, `%` sticks to the number, other units take k/M/G ("1.2k req/s").
 */
export function formatValue(value: number, unit: string | undefined): string {
  switch (unit) {
    case '%':
      return `${formatNumber(value)}%`;
    case 'ms':
      if (Math.abs(value) < 1000) return `${formatNumber(value)} ms`;
      return formatValue(value / 1000, 's');
    case 's':
      if (Math.abs(value) < 60) return `${formatNumber(value)} s`;
      if (Math.abs(value) < 3600) return `${formatNumber(value / 60)} min`;
      return `${formatNumber(value / 3600)} h`;
    case 'B':
    case 'bytes': {
      const [number, prefix] = scaled(value, 1024, BINARY);
      return `${formatNumber(number)} ${prefix}`;
    }
    default: {
      const [number, prefix] = scaled(value, 1000, SI);
      const suffix = unit ? ` ${unit}` : '';
      return prefix ? `${formatNumber(number)}${prefix}${suffix}` : `${formatNumber(number)}${suffix}`;
    }
  }
}
