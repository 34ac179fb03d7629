// A Docker Registry v2 / OCI distribution client on node:http(s):
// HTTPS by default (plain HTTP only when allowed, tried after HTTPS fails),
// anonymous, Bearer token and basic auth, bounded retries with back-off on
// 429/5xx and network errors, redirects (credentials dropped across hosts),
// keep-alive connections shared by parallel blob downloads.
import type { Agent as HttpAgent, IncomingMessage } from 'node:http';
import { RktError, errMessage } from '../../lib/errors.ts';
import { debug } from '../../lib/log.ts';
import { caCerts } from '../fetch/http.ts';
import { parseTokenResponse, parseWwwAuthenticate, tokenUrl } from './auth.ts';
import { ACCEPT, digestOf, type Descriptor } from './manifest.ts';

export interface RegistryOptions {
  allowHttp: boolean;
  insecureTls: boolean;
  credentials?: { user: string; password: string } | undefined;
  /** Attempts per request on transient failures (default 4). */
  attempts?: number;
  /** First back-off delay in ms (doubles each time; default 200). */
  backoffMs?: number;
}

const TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH']);

/** A network-level failure worth retrying (connection reset, timeout, truncated body). */
export class TransientError extends RktError {
  constructor(message: string, cause?: unknown) {
    super('FETCH', message, cause === undefined ? {} : { cause });
  }
}

export function isTransientNetError(e: unknown): boolean {
  if (e instanceof TransientError) return true;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const msg = errMessage(e);
  return (code !== undefined && TRANSIENT.has(code)) || /aborted|socket hang up|timed out|premature close/i.test(msg);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function retryAfterMs(res: IncomingMessage): number | undefined {
  const v = res.headers['retry-after'];
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.min(n * 1000, 10_000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.min(Math.max(0, t - Date.now()), 10_000) : undefined;
}

async function readSmall(res: IncomingMessage, limit = 4 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw new RktError('INVALID_IMAGE', `response from ${res.url || 'the registry'} is larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The registry's error body (`{"errors":[{code,message}]}`) as a short text. */
function errorDetail(body: Buffer): string {
  try {
    const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e) return `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`;
  } catch {
    /* not JSON */
  }
  const t = body.toString('utf8').trim().split('\n')[0] ?? '';
  return t.slice(0, 120);
}

export class Registry {
  readonly host: string;
  readonly repository: string;
  private readonly o: RegistryOptions;
  private scheme: 'https' | 'http' | undefined;
  private auth: string | undefined;
  private agents: { http?: HttpAgent; https?: HttpAgent } = {};

  constructor(host: string, repository: string, o: RegistryOptions) {
    this.host = host;
    this.repository = repository;
    this.o = o;
  }

  close(): void {
    this.agents.http?.destroy();
    this.agents.https?.destroy();
  }

  private async agent(protocol: string): Promise<{ mod: typeof import('node:http'); agent: HttpAgent; ca: string[] | undefined }> {
    if (protocol === 'https:') {
      const mod = await import('node:https');
      this.agents.https ??= new mod.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !this.o.insecureTls });
      return { mod: mod as unknown as typeof import('node:http'), agent: this.agents.https, ca: await caCerts() };
    }
    const mod = await import('node:http');
    this.agents.http ??= new mod.Agent({ keepAlive: true, maxSockets: 8 });
    return { mod, agent: this.agents.http, ca: undefined };
  }

  /** One GET, following redirects; returns the final response (body unread). */
  private async once(rawUrl: string, headers: Record<string, string>): Promise<IncomingMessage> {
    let url = new URL(rawUrl);
    const origin = url.host;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      if (url.protocol === 'http:' && !this.o.allowHttp) {
        throw new RktError('INSECURE', `refusing plain http for ${url.href}`, { hint: 'use --insecure-options=http to allow it' });
      }
      const h: Record<string, string> = { 'user-agent': 'rkt', ...headers };
      if (url.host !== origin) delete h.authorization;
      const { mod, agent, ca } = await this.agent(url.protocol);
      debug(`GET ${url.href}`);
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = mod.get(url, { headers: h, agent, ...(ca ? { ca } : {}), ...(url.protocol === 'https:' ? { rejectUnauthorized: !this.o.insecureTls } : {}), timeout: TIMEOUT_MS }, resolve);
        req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
        req.on('error', reject);
      });
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        res.resume();
        url = new URL(res.headers.location, url);
        continue;
      }
      return res;
    }
    throw new RktError('FETCH', `too many redirects fetching ${rawUrl}`);
  }

  /** Decides https vs http on first contact (http only if allowed and https fails at the protocol level). */
  private async base(): Promise<string> {
    if (this.scheme) return `${this.scheme}://${this.host}`;
    try {
      const res = await this.once(`https://${this.host}/v2/`, {});
      res.resume();
      this.scheme = 'https';
    } catch (e) {
      if (!this.o.allowHttp) {
        const plain = /wrong version number|EPROTO|packet length/i.test(errMessage(e));
        throw new RktError('FETCH', `cannot reach registry ${this.host} over https: ${errMessage(e)}`, {
          cause: e,
          ...(plain ? { hint: 'the registry seems to speak plain http: use --insecure-options=http' } : {}),
        });
      }
      debug(`https to ${this.host} failed (${errMessage(e)}), using http`);
      this.scheme = 'http';
    }
    return `${this.scheme}://${this.host}`;
  }

  private async authenticate(res: IncomingMessage, what: string): Promise<void> {
    const header = res.headers['www-authenticate'];
    const challenges = parseWwwAuthenticate(Array.isArray(header) ? header.join(', ') : header ?? '');
    const creds = this.o.credentials;
    const basic = creds ? `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}` : undefined;
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      let url: URL;
      try {
        url = tokenUrl(bearer, this.repository);
      } catch (e) {
        throw new RktError('FETCH', `${what}: bad authentication challenge from ${this.host}: ${errMessage(e)}`);
      }
      const tres = await this.withRetries(() => this.once(url.href, basic ? { authorization: basic } : {}), `getting a token from ${url.origin}`);
      const body = await readSmall(tres, 1 << 20);
      const st = tres.statusCode ?? 0;
      if (st === 401 || st === 403) {
        throw new RktError('FETCH', `${what}: the token service ${url.origin} refused ${creds ? `the credentials of user "${creds.user}"` : 'anonymous access'} (HTTP ${st})`, { hint: creds ? 'check the dockerAuth credentials in auth.d' : 'configure credentials for this registry in an auth.d dockerAuth file' });
      }
      if (st < 200 || st > 299) throw new RktError('FETCH', `${what}: token service ${url.origin}: HTTP ${st}`);
      try {
        this.auth = `Bearer ${parseTokenResponse(body.toString('utf8'))}`;
      } catch (e) {
        throw new RktError('FETCH', `${what}: token service ${url.origin}: ${errMessage(e)}`);
      }
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && basic) {
      this.auth = basic;
      return;
    }
    throw new RktError('FETCH', `${what}: registry ${this.host} requires authentication (HTTP 401)`, { hint: 'configure credentials for this registry in an auth.d dockerAuth file' });
  }

  /** Retries fn on network errors and retryable statuses; returns the last response. */
  private async withRetries(fn: () => Promise<IncomingMessage>, what: string): Promise<IncomingMessage> {
    const attempts = this.o.attempts ?? 4;
    const base = this.o.backoffMs ?? 200;
    for (let i = 1; ; i++) {
      let res: IncomingMessage;
      try {
        res = await fn();
      } catch (e) {
        if (e instanceof RktError || !isTransientNetError(e) || i >= attempts) {
          if (e instanceof RktError) throw e;
          throw new RktError('FETCH', `${what}: ${errMessage(e)}${i > 1 ? ` (after ${i} attempts)` : ''}`, { cause: e });
        }
        debug(`${what}: ${errMessage(e)}; retrying`);
        await sleep(base * 2 ** (i - 1));
        continue;
      }
      const st = res.statusCode ?? 0;
      if (RETRY_STATUS.has(st) && i < attempts) {
        res.resume();
        const wait = retryAfterMs(res) ?? base * 2 ** (i - 1);
        debug(`${what}: HTTP ${st}; retrying in ${wait} ms`);
        await sleep(wait);
        continue;
      }
      if (RETRY_STATUS.has(st)) Object.assign(res, { rktAttempts: i });
      return res;
    }
  }

  /** GET a registry path with auth and retries; non-2xx becomes a clear error. */
  async request(path: string, headers: Record<string, string>, what: string): Promise<IncomingMessage> {
    const base = await this.base();
    let authed = false;
    for (;;) {
      const res = await this.withRetries(() => this.once(`${base}${path}`, { ...headers, ...(this.auth ? { authorization: this.auth } : {}) }), what);
      const st = res.statusCode ?? 0;
      if (st === 401 && !authed) {
        authed = true;
        const had = this.auth;
        res.resume();
        await this.authenticate(res, what);
        if (had === this.auth && had !== undefined) throw new RktError('FETCH', `${what}: registry ${this.host} refused the credentials (HTTP 401)`);
        continue;
      }
      if (st >= 200 && st < 300) return res;
      const body = await readSmall(res, 64 << 10).catch(() => Buffer.alloc(0));
      const detail = errorDetail(body);
      const attempts = (res as IncomingMessage & { rktAttempts?: number }).rktAttempts;
      const suffix = `HTTP ${st}${detail ? ` (${detail})` : ''}${attempts ? ` after ${attempts} attempts` : ''}`;
      if (st === 401) throw new RktError('FETCH', `${what}: not authorized by registry ${this.host}: ${suffix}`, { hint: 'check the dockerAuth credentials in auth.d' });
      if (st === 403) throw new RktError('FETCH', `${what}: access denied by registry ${this.host}: ${suffix}`);
      if (st === 404) throw new RktError('NOT_FOUND', `${what}: not found on registry ${this.host}: ${suffix}`);
      throw new RktError('FETCH', `${what}: registry ${this.host} answered ${suffix}`);
    }
  }

  /** The manifest for a tag or digest: bytes, Content-Type, and its digest (checked when asked by digest). */
  async manifest(reference: string): Promise<{ body: Buffer; contentType: string; digest: string }> {
    const what = `fetching manifest ${this.repository}${reference.includes(':') ? '@' : ':'}${reference} from ${this.host}`;
    const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, { accept: ACCEPT }, what);
    let body: Buffer;
    try {
      body = await readSmall(res, 4 << 20);
    } catch (e) {
      if (e instanceof RktError) throw e;
      throw new RktError('FETCH', `${what}: ${errMessage(e)}`, { cause: e });
    }
    const digest = digestOf(body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new RktError('INVALID_IMAGE', `${what}: digest mismatch: the manifest's content has digest ${digest}`);
    }
    const header = res.headers['docker-content-digest'];
    if (!reference.startsWith('sha256:') && typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
      throw new RktError('INVALID_IMAGE', `${what}: digest mismatch: the registry says ${header}, the content has ${digest}`);
    }
    return { body, contentType: String(res.headers['content-type'] ?? ''), digest };
  }

  /** A blob's response stream (unverified; the caller hashes it). Foreign layers try their URLs first. */
  async blob(d: Descriptor): Promise<IncomingMessage> {
    const what = `fetching blob ${d.digest} of ${this.repository} from ${this.host}`;
    for (const u of d.urls ?? []) {
      try {
        const res = await this.withRetries(() => this.once(u, {}), `fetching foreign layer ${d.digest} from ${u}`);
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) return res;
        res.resume();
        debug(`foreign layer URL ${u}: HTTP ${res.statusCode}`);
      } catch (e) {
        debug(`foreign layer URL ${u}: ${errMessage(e)}`);
      }
    }
    return this.request(`/v2/${this.repository}/blobs/${d.digest}`, {}, what);
  }

  /** A small blob (config) in memory, digest verified. */
  async blobBuffer(d: Descriptor): Promise<Buffer> {
    const res = await this.blob(d);
    const body = await readSmall(res, 16 << 20);
    const got = digestOf(body);
    if (got !== d.digest) throw new RktError('INVALID_IMAGE', `blob ${d.digest} from ${this.host}: digest mismatch (got ${got})`);
    return body;
  }
}
