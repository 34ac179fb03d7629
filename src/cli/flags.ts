// A small pflag-compatible flag parser (rkt used cobra/pflag): `--f=v`,
// `--f v`, bare booleans, `--f=false`, repeatable flags, flags with a value
// implied when bare (pflag's NoOptDefVal, e.g. `--wait`), and `--`.
// Written here rather than taken from commander because rkt's grammar
// (per-image flags, `---`) needs token-level control and it keeps start-up lean.
import { usage } from '../lib/errors.ts';

export type FlagType = 'bool' | 'string' | 'strings' | 'int';

export interface FlagDef {
  name: string;
  type: FlagType;
  help: string;
  default?: string | boolean | number | string[];
  short?: string;
  /** Value used when the flag is given bare (`--wait`). Value then only via `=`. */
  bare?: string;
  hidden?: boolean;
  /** Shown in help as the value's name. */
  arg?: string;
}

export type FlagValue = string | boolean | number | string[];
export type FlagValues = Record<string, FlagValue | undefined>;

export interface Parsed {
  values: FlagValues;
  /** Names of flags the user set explicitly. */
  set: Set<string>;
  positionals: string[];
  /** Arguments after a literal `--`. */
  rest: string[] | undefined;
}

export interface ParseOptions {
  /** Stop at the first positional; everything after it is positional (pflag SetInterspersed(false)). */
  stopAtPositional?: boolean;
}

function parseBool(name: string, v: string): boolean {
  if (/^(1|t|true|T|TRUE|True)$/.test(v)) return true;
  if (/^(0|f|false|F|FALSE|False)$/.test(v)) return false;
  throw usage(`invalid argument "${v}" for "--${name}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
}

function assign(def: FlagDef, raw: string, values: FlagValues): void {
  switch (def.type) {
    case 'bool':
      values[def.name] = parseBool(def.name, raw);
      return;
    case 'int': {
      if (!/^[+-]?\d+$/.test(raw)) throw usage(`invalid argument "${raw}" for "--${def.name}" flag: not an integer`);
      values[def.name] = Number.parseInt(raw, 10);
      return;
    }
    case 'strings': {
      const prev = values[def.name];
      values[def.name] = [...(Array.isArray(prev) ? prev : []), raw];
      return;
    }
    default:
      values[def.name] = raw;
  }
}

export function defaults(defs: readonly FlagDef[]): FlagValues {
  const values: FlagValues = {};
  for (const d of defs) {
    if (d.default !== undefined) values[d.name] = Array.isArray(d.default) ? [...d.default] : d.default;
    else if (d.type === 'bool') values[d.name] = false;
    else if (d.type === 'strings') values[d.name] = [];
  }
  return values;
}

export function findFlag(defs: readonly FlagDef[], token: string): { def: FlagDef; inline: string | undefined } | undefined {
  let name: string;
  let inline: string | undefined;
  if (token.startsWith('--')) {
    const eq = token.indexOf('=');
    name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    inline = eq < 0 ? undefined : token.slice(eq + 1);
    const def = defs.find((d) => d.name === name);
    return def && { def, inline };
  }
  name = token.slice(1, 2);
  inline = token.length > 2 ? token.slice(2).replace(/^=/, '') : undefined;
  const def = defs.find((d) => d.short === name);
  return def && { def, inline };
}

/**
 * Consumes one flag token at args[i] into `values`; returns how many tokens it used.
 * Throws a usage error for unknown flags or missing values.
 */
export function consumeFlag(args: readonly string[], i: number, defs: readonly FlagDef[], values: FlagValues, set: Set<string>): number {
  const token = args[i] as string;
  const found = findFlag(defs, token);
  if (!found) {
    const shown = token.startsWith('--') ? token.split('=')[0] : token.slice(0, 2);
    throw usage(`unknown flag: ${shown}`);
  }
  const { def, inline } = found;
  set.add(def.name);
  if (inline !== undefined) {
    assign(def, inline, values);
    return 1;
  }
  if (def.type === 'bool') {
    values[def.name] = true;
    return 1;
  }
  if (def.bare !== undefined) {
    assign(def, def.bare, values);
    return 1;
  }
  const next = args[i + 1];
  if (next === undefined) throw usage(`flag needs an argument: --${def.name}`);
  assign(def, next, values);
  return 2;
}

export function isFlagToken(token: string): boolean {
  return token.length > 1 && token.startsWith('-') && token !== '--';
}

export function parseFlags(args: readonly string[], defs: readonly FlagDef[], opts: ParseOptions = {}): Parsed {
  const values = defaults(defs);
  const set = new Set<string>();
  const positionals: string[] = [];
  let rest: string[] | undefined;
  let i = 0;
  while (i < args.length) {
    const token = args[i] as string;
    if (token === '--') {
      rest = args.slice(i + 1);
      break;
    }
    if (isFlagToken(token) && !(opts.stopAtPositional && positionals.length > 0)) {
      i += consumeFlag(args, i, defs, values, set);
      continue;
    }
    positionals.push(token);
    i++;
  }
  return { values, set, positionals, rest };
}

/** Formats flag help lines as cobra does: `  -s, --name string   help (default x)`. */
export function formatFlags(defs: readonly FlagDef[]): string {
  const rows = defs
    .filter((d) => !d.hidden)
    .map((d) => {
      const arg = d.type === 'bool' ? '' : ` ${d.arg ?? (d.type === 'int' ? 'int' : d.type === 'strings' ? 'stringSlice' : 'string')}`;
      const left = `${d.short ? `-${d.short}, ` : '    '}--${d.name}${d.bare !== undefined ? `[=${d.bare}]` : ''}${arg}`;
      const def = d.default;
      const showDef = def !== undefined && def !== '' && def !== false && !(Array.isArray(def) && def.length === 0);
      return [left, `${d.help}${showDef ? ` (default ${Array.isArray(def) ? `[${def.join(',')}]` : String(def)})` : ''}`] as const;
    });
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([l, r]) => `  ${l.padEnd(w)}   ${r}`).join('\n');
}
