// Finds an executable on PATH (and the usual system dirs, for a PATH-less sudo).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}
