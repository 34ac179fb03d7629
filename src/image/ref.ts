// Image references as rkt accepts them (rkt/image/common.go, cli_apps.go):
// store IDs, local paths and file:// URLs, http(s) URLs, docker references,
// and appc names with optional version and labels. Pure.
import { statSync } from 'node:fs';
import { RktError } from '../lib/errors.ts';
import { AC_IDENTIFIER, type Label } from './aci/labels.ts';
import { parseTransportRef, splitTransport, type Transport } from './docker/reference.ts';

export type ImageRef =
  | { kind: 'id'; prefix: string; raw: string }
  | { kind: 'file'; path: string; raw: string }
  | { kind: 'url'; url: string; raw: string }
  | { kind: 'docker'; transport: Transport; ref: string; raw: string }
  | { kind: 'name'; name: string; labels: Label[]; raw: string };

/** Parses `name[:version][,label=value…]`; no version means the `latest` semantics. */
export function parseAppcName(raw: string): { name: string; labels: Label[] } {
  const [head = '', ...rest] = raw.split(',');
  const colon = head.indexOf(':');
  const name = colon < 0 ? head : head.slice(0, colon);
  const labels: Label[] = [];
  if (colon >= 0) labels.push({ name: 'version', value: head.slice(colon + 1) });
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new RktError('USAGE', `invalid image label "${kv}" in "${raw}": expected NAME=VALUE`);
    const key = kv.slice(0, eq);
    if (labels.some((l) => l.name === key)) throw new RktError('USAGE', `label "${key}" given twice in "${raw}"`);
    labels.push({ name: key, value: kv.slice(eq + 1) });
  }
  if (!AC_IDENTIFIER.test(name)) throw new RktError('USAGE', `invalid image name "${name}": not a valid AC Identifier (lowercase letters, digits and -._~/)`);
  return { name, labels };
}

function looksLikePath(s: string): boolean {
  if (s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..') return true;
  if (/\.aci(\.(gz|bz2|xz|zst))?$/.test(s)) return true;
  try {
    return statSync(s).isFile();
  } catch {
    return false;
  }
}

export function parseImageRef(raw: string): ImageRef {
  if (raw === '') throw new RktError('USAGE', 'empty image reference');
  if (/^sha512-[0-9a-f]*$/.test(raw)) return { kind: 'id', prefix: raw, raw };
  const tr = splitTransport(raw);
  if (tr) {
    parseTransportRef(tr.transport, tr.rest); // validates
    return { kind: 'docker', transport: tr.transport, ref: tr.rest, raw };
  }
  if (raw.startsWith('file://')) return { kind: 'file', path: decodeURIComponent(raw.slice('file://'.length)), raw };
  if (/^https?:\/\//.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new RktError('USAGE', `invalid URL "${raw}"`);
    }
    return { kind: 'url', url: raw, raw };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(raw)) throw new RktError('USAGE', `unsupported image transport in "${raw}"`);
  if (looksLikePath(raw)) return { kind: 'file', path: raw, raw };
  const { name, labels } = parseAppcName(raw);
  return { kind: 'name', name, labels, raw };
}
