// appc meta discovery (spec/discovery.md): GET https://{name}?ac-discovery=1,
// read <meta name="ac-discovery" content="PREFIX TEMPLATE"> and
// <meta name="ac-discovery-pubkeys" content="PREFIX URL">; when nothing
// matches, retry the parent path. Parsing and templating are pure.
import { RktError } from '../../lib/errors.ts';
import { debug } from '../../lib/log.ts';
import type { Label } from '../aci/manifest.ts';
import { hostArch } from '../aci/manifest.ts';
import { fetchBuffer, type HttpOptions } from './http.ts';

export interface MetaTag {
  prefix: string;
  value: string;
}

export interface MetaTags {
  discovery: MetaTag[];
  pubkeys: MetaTag[];
}

const ATTR = /([a-zA-Z-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))/g;

/** Extracts ac-discovery and ac-discovery-pubkeys meta tags from an HTML page. */
export function parseMetaTags(html: string): MetaTags {
  const out: MetaTags = { discovery: [], pubkeys: [] };
  for (const m of html.matchAll(/<meta\b([^>]*)>/gi)) {
    const attrs: Record<string, string> = {};
    for (const a of (m[1] ?? '').matchAll(ATTR)) attrs[(a[1] as string).toLowerCase()] = a[3] ?? a[4] ?? a[5] ?? '';
    const fields = (attrs.content ?? '').trim().split(/\s+/);
    if (fields.length !== 2) continue;
    const tag = { prefix: fields[0] as string, value: fields[1] as string };
    if (attrs.name === 'ac-discovery') out.discovery.push(tag);
    else if (attrs.name === 'ac-discovery-pubkeys') out.pubkeys.push(tag);
  }
  return out;
}

/** Whether `prefix` covers `name` on a path-component boundary (or as a plain string prefix, as appc allows). */
export function prefixMatches(prefix: string, name: string): boolean {
  return name.startsWith(prefix);
}

/**
 * Fills `{name} {version} {os} {arch} {ext}` and any `{label}`; returns
 * undefined when the template uses a placeholder without a value (then it
 * does not apply).
 */
export function renderTemplate(template: string, values: Record<string, string>): string | undefined {
  let missing = false;
  const out = template.replace(/\{([^{}]+)\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) {
      missing = true;
      return '';
    }
    return v;
  });
  return missing ? undefined : out;
}

export interface Endpoints {
  aci: string;
  asc: string;
}

export interface Discovered {
  endpoints: Endpoints[];
  pubkeys: string[];
}

function parentPaths(name: string): string[] {
  const parts = name.split('/');
  const out: string[] = [];
  for (let i = parts.length; i >= 1; i--) out.push(parts.slice(0, i).join('/'));
  return out;
}

async function page(path: string, opts: HttpOptions): Promise<MetaTags | undefined> {
  const schemes = opts.allowHttp ? ['https', 'http'] : ['https'];
  for (const scheme of schemes) {
    try {
      const r = await fetchBuffer(`${scheme}://${path}?ac-discovery=1`, opts);
      return parseMetaTags(r.body.toString('utf8'));
    } catch (e) {
      debug(`discovery on ${scheme}://${path}: ${(e as Error).message}`);
    }
  }
  return undefined;
}

/** Meta discovery of where to get an image and its signature. */
export async function discover(name: string, labels: readonly Label[], opts: HttpOptions): Promise<Discovered> {
  const values: Record<string, string> = { name, os: process.platform, arch: hostArch(), version: 'latest' };
  for (const l of labels) values[l.name] = l.value;
  const found: Discovered = { endpoints: [], pubkeys: [] };
  for (const path of parentPaths(name)) {
    const tags = await page(path, opts);
    if (!tags) continue;
    for (const t of tags.discovery) {
      if (!prefixMatches(t.prefix, name)) continue;
      const aci = renderTemplate(t.value, { ...values, ext: 'aci' });
      const asc = renderTemplate(t.value, { ...values, ext: 'aci.asc' });
      if (aci && asc) found.endpoints.push({ aci, asc });
    }
    for (const t of tags.pubkeys) if (prefixMatches(t.prefix, name)) found.pubkeys.push(t.value);
    if (found.endpoints.length > 0) return found;
  }
  throw new RktError('DISCOVERY', `discovery failed for "${name}": no ac-discovery meta tag matched`, {
    hint: 'check the image name, or fetch it by URL or from a file',
  });
}

/** Meta discovery of the public keys for a prefix (`rkt trust --prefix`). */
export async function discoverPubkeys(prefix: string, opts: HttpOptions): Promise<string[]> {
  for (const path of parentPaths(prefix)) {
    const tags = await page(path, opts);
    if (!tags) continue;
    const keys = tags.pubkeys.filter((t) => prefixMatches(t.prefix, prefix)).map((t) => t.value);
    if (keys.length > 0) return keys;
  }
  throw new RktError('DISCOVERY', `no ac-discovery-pubkeys meta tag found for prefix "${prefix}"`);
}
