// Go's time.ParseDuration, as rkt's --grace-period and --wait take it. Pure.
import { usage } from './errors.ts';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration string ("24h", "1h30m", "0", "-1.5s"). */
export function parseDuration(s: string, flag = 'duration'): number {
  if (s === '0') return 0;
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(s);
  if (!m) throw usage(`invalid argument "${s}" for ${flag}: time: invalid duration "${s}"`);
  let total = 0;
  for (const part of s.slice(m[1]?.length ?? 0).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (UNITS[part[2] as string] as number);
  }
  return m[1] === '-' ? -total : total;
}

/** Formats milliseconds as Go prints a duration (`30m0s`, `24h0m0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
