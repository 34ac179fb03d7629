// Registry authentication challenges (RFC 7235 WWW-Authenticate, as the
// Docker token spec uses them). Pure.

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (several challenges allowed). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t' || header[i] === ',')) i++;
  };
  while (i < n) {
    skipWs();
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(header.slice(i));
    if (!m) break;
    const scheme = m[0];
    i += scheme.length;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // params: key=value or key="quoted", comma separated, until the next scheme token
    for (;;) {
      const save = i;
      skipWs();
      const km = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*/.exec(header.slice(i));
      if (!km) {
        i = save;
        break;
      }
      i += km[0].length;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const vm = /^[^,\s]*/.exec(header.slice(i));
        value = vm ? vm[0] : '';
        i += value.length;
      }
      ch.params[(km[1] as string).toLowerCase()] = value;
    }
  }
  return out;
}

/** The token endpoint URL for a Bearer challenge (scope defaults to pulling `repository`). */
export function tokenUrl(ch: Challenge, repository: string): URL {
  const realm = ch.params.realm;
  if (!realm) throw new Error('Bearer challenge without realm');
  const url = new URL(realm);
  if (ch.params.service) url.searchParams.set('service', ch.params.service);
  url.searchParams.set('scope', ch.params.scope || `repository:${repository}:pull`);
  return url;
}

/** Extracts the token from a token endpoint's JSON answer. */
export function parseTokenResponse(body: string): string {
  const j = JSON.parse(body) as { token?: unknown; access_token?: unknown };
  const t = typeof j.token === 'string' && j.token !== '' ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
  if (t === '') throw new Error('token endpoint returned no token');
  return t;
}
