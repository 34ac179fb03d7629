// Output helpers matching rkt's: Go text/tabwriter with tab padding
// (minwidth 0, tabwidth 8, padding 1, padchar '\t'), go-humanize sizes and
// relative times, and Go's time layout for --full.

/** Formats rows like tabwriter.NewWriter(w, 0, 8, 1, '\t', 0): every cell but the last of a row is a column. */
export function tabwrite(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < r.length - 1; i++) {
      const w = Math.ceil(((r[i] as string).length + 1) / 8) * 8;
      widths[i] = Math.max(widths[i] ?? 0, w);
    }
  }
  let out = '';
  for (const r of rows) {
    for (let i = 0; i < r.length; i++) {
      const cell = r[i] as string;
      if (i === r.length - 1) out += cell;
      else out += cell + '\t'.repeat(Math.ceil(((widths[i] as number) - cell.length) / 8));
    }
    out += '\n';
  }
  return out;
}

/** go-humanize IBytes without the space, as rkt's image list shows sizes (`12MiB`). */
export function humanSize(n: number): string {
  if (n < 10) return `${n}B`;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  const e = Math.floor(Math.log(n) / Math.log(1024));
  const v = n / 1024 ** e;
  return `${v < 10 ? v.toFixed(1) : Math.round(v).toFixed(0)}${units[e]}`;
}

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const W = 7 * D;
const MO = 30 * D;
const Y = 365 * D;

/** go-humanize Time: "now", "3 minutes ago", "2 days ago"… */
export function humanTime(ms: number, now = Date.now()): string {
  let diff = now - ms;
  const suffix = diff < 0 ? 'from now' : 'ago';
  diff = Math.abs(diff);
  const f = (n: number, unit: string) => (n === 1 ? `1 ${unit} ${suffix}` : `${n} ${unit}s ${suffix}`);
  if (diff < S) return 'now';
  if (diff < M) return f(Math.floor(diff / S), 'second');
  if (diff < H) return f(Math.floor(diff / M), 'minute');
  if (diff < D) return f(Math.floor(diff / H), 'hour');
  if (diff < W) return f(Math.floor(diff / D), 'day');
  if (diff < MO) return f(Math.floor(diff / W), 'week');
  if (diff < Y) return f(Math.floor(diff / MO), 'month');
  if (diff < 50 * Y) return f(Math.max(1, Math.floor(diff / Y)), 'year');
  return `a long while ${suffix}`;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Go layout `2006-01-02 15:04:05.999 -0700 MST` in local time. */
export function fullTime(ms: number): string {
  const d = new Date(ms);
  const frac = d.getMilliseconds() ? `.${pad(d.getMilliseconds(), 3).replace(/0+$/, '')}` : '';
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${frac} ${sign}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)} ${tz}`;
}

/** JSON with selected integer fields written as exact nanoseconds (ms × 10^6 exceeds 2^53). */
export function jsonWithNanos(value: unknown, pretty: boolean): string {
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `__ns__${v.toString()}` : v), pretty ? '\t' : undefined);
  return text.replace(/"__ns__(\d+)"/g, '$1');
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms)) * 1_000_000n;
}
