// Path rules for tar entries, shared by every extractor. Pure.
import { RktError } from '../lib/errors.ts';

/**
 * Normalizes a tar member name to slash-separated components without `.`;
 * refuses absolute names and any `..` component (they would escape the tree).
 * Returns '' for the archive root.
 */
export function normalizeEntryName(name: string): string {
  // Fast path, most names: no '', '.' or '..' part (one trailing slash is fine).
  const plain = name.endsWith('/') ? name.slice(0, -1) : name;
  if (plain !== '' && !plain.startsWith('/') && !/(?:^|\/)\.{0,2}(?:\/|$)/.test(plain)) return plain;
  if (name.startsWith('/')) throw new RktError('UNSAFE_PATH', `tar entry "${name}" has an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new RktError('UNSAFE_PATH', `tar entry "${name}" escapes the image root ("..")`);
  return parts.join('/');
}

/**
 * Whether a symlink at `rel` (relative to the root) pointing to `target`
 * stays inside the root when resolved lexically. Absolute targets are
 * resolved against the root, as inside the container, so they stay inside.
 */
export function symlinkStaysInside(rel: string, target: string): boolean {
  if (target.startsWith('/')) return true;
  const stack = rel.split('/').slice(0, -1);
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) return false;
      stack.pop();
    } else stack.push(part);
  }
  return true;
}

/** The strict ancestors of a relative path: `a/b/c` → [`a`, `a/b`]. */
export function ancestors(rel: string): string[] {
  const parts = rel.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}
