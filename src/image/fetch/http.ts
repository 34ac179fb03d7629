// HTTP(S) GETs for images, signatures, keys and discovery pages, on node's
// own http/https. Redirects followed (credentials dropped across hosts),
// plain http refused unless allowed, TLS checks on unless lifted.
import { createWriteStream, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { RktError, errMessage } from '../../lib/errors.ts';
import { debug } from '../../lib/log.ts';

export interface HttpOptions {
  insecureTls: boolean;
  allowHttp: boolean;
  headers?: Record<string, string>;
  /** Authorization header per host (from auth.d). */
  authFor?: (host: string) => string | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  url: string;
}

const MAX_REDIRECTS = 10;
const TIMEOUT_MS = 60_000;

// Extra CA certificates handed over by bin/rkt (NODE_EXTRA_CA_CERTS costs
// ~90 ms at every node start; we pay it only when talking TLS).
let caList: string[] | undefined;
export async function caCerts(): Promise<string[] | undefined> {
  const extra = process.env.RKT_EXTRA_CA_CERTS;
  if (!extra) return undefined;
  if (!caList) {
    const tls = await import('node:tls');
    try {
      caList = [...tls.rootCertificates, readFileSync(extra, 'utf8')];
    } catch (e) {
      debug(`cannot read extra CA certificates ${extra}: ${errMessage(e)}`);
      caList = [...tls.rootCertificates];
    }
  }
  return caList;
}

function checkScheme(url: URL, opts: HttpOptions): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (opts.allowHttp) return;
    throw new RktError('INSECURE', `refusing plain http for ${url.href}`, { hint: 'use https, or --insecure-options=http to allow it' });
  }
  throw new RktError('FETCH', `unsupported URL scheme in ${url.href}`);
}

/** Opens a GET and follows redirects; the caller consumes or destroys the response. */
export async function get(rawUrl: string, opts: HttpOptions, extraHeaders: Record<string, string> = {}): Promise<{ res: IncomingMessage; url: string }> {
  let url = new URL(rawUrl);
  const origin = url.host;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    checkScheme(url, opts);
    const headers: Record<string, string> = { 'user-agent': 'rkt', ...opts.headers, ...extraHeaders };
    const auth = url.host === origin ? opts.authFor?.(url.hostname) : undefined;
    if (auth) headers.authorization = auth;
    const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const ca = url.protocol === 'https:' ? await caCerts() : undefined;
    debug(`GET ${url.href}`);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = mod.get(url, { headers, rejectUnauthorized: !opts.insecureTls, ...(ca ? { ca } : {}), timeout: TIMEOUT_MS }, resolve);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
    }).catch((e: unknown) => {
      throw new RktError('FETCH', `cannot fetch ${url.href}: ${errMessage(e)}`, { cause: e });
    });
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      url = new URL(res.headers.location, url);
      continue;
    }
    return { res, url: url.href };
  }
  throw new RktError('FETCH', `too many redirects fetching ${rawUrl}`);
}

function flatHeaders(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readBody(res: IncomingMessage, limit: number, url: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw new RktError('FETCH', `response from ${url} is too large`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** GET into memory (pages, keys, signatures). Non-2xx is an error unless allowStatus lists it. */
export async function fetchBuffer(url: string, opts: HttpOptions, allowStatus: readonly number[] = []): Promise<HttpResponse> {
  const { res, url: final } = await get(url, opts);
  const status = res.statusCode ?? 0;
  if ((status < 200 || status > 299) && !allowStatus.includes(status)) {
    res.resume();
    throw new RktError('FETCH', `cannot fetch ${final}: HTTP ${status}`);
  }
  return { status, headers: flatHeaders(res), body: await readBody(res, 64 << 20, final), url: final };
}

export interface Download {
  /** 304: the stored copy is current (the ETag matched). */
  status: 200 | 304;
  etag: string | null;
  /** Seconds, from Cache-Control max-age. */
  maxAge: number | null;
  url: string;
}

export function parseMaxAge(cacheControl: string | undefined): number | null {
  if (!cacheControl) return null;
  if (/\bno-(cache|store)\b/.test(cacheControl)) return 0;
  const m = /\bmax-age=(\d+)/.exec(cacheControl);
  return m ? Number(m[1]) : null;
}

function progress(label: string, total: number): Transform | undefined {
  if (!process.stderr.isTTY) return undefined;
  let done = 0;
  let last = 0;
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const draw = (final: boolean) => {
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '='.repeat(Math.round(frac * width)).padEnd(width, ' ');
    process.stderr.write(`\rDownloading ${label}: [${bar}] ${mb(done)}${total > 0 ? `/${mb(total)}` : ''}${final ? '\n' : ''}`);
  };
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      done += chunk.length;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        draw(false);
      }
      cb(null, chunk);
    },
    flush(cb) {
      draw(true);
      cb();
    },
  });
}

/** Downloads url to dest (created exclusively), honouring a stored ETag. */
export async function downloadToFile(url: string, dest: string, opts: HttpOptions & { etag?: string | null; label?: string }): Promise<Download> {
  const { res, url: final } = await get(url, opts, opts.etag ? { 'if-none-match': opts.etag } : {});
  const status = res.statusCode ?? 0;
  const headers = flatHeaders(res);
  const meta = { etag: headers.etag ?? null, maxAge: parseMaxAge(headers['cache-control']), url: final };
  if (status === 304 && opts.etag) {
    res.resume();
    return { status: 304, ...meta };
  }
  if (status < 200 || status > 299) {
    res.resume();
    throw new RktError('FETCH', `cannot fetch ${final}: HTTP ${status}`);
  }
  const total = Number(headers['content-length'] ?? 0);
  const bar = progress(opts.label ?? final, total);
  try {
    const file = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
    if (bar) await pipeline(res, bar, file);
    else await pipeline(res, file);
  } catch (e) {
    throw new RktError('FETCH', `downloading ${final} failed: ${errMessage(e)}`, { cause: e });
  }
  return { status: 200, ...meta };
}
