// A loopback HTTPS (or plain HTTP) server for fetch tests: a throwaway CA and
// server certificate made with openssl at test time, a route table, a request
// log, ETag / If-None-Match -> 304, and appc discovery pages.
//
// rkt trusts the CA when its environment has NODE_EXTRA_CA_CERTS=<ca.pem>
// (`server.caEnv`); bin/rkt hands that over as RKT_EXTRA_CA_CERTS.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Certs {
  dir: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  cleanup(): void;
}

/** CA + server certificate for 127.0.0.1 / localhost (EC P-256, valid 2 days). */
export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'rkt-tls-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=rkt test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return {
    dir,
    caPath: join(dir, 'ca.pem'),
    certPath: join(dir, 'server.pem'),
    keyPath: join(dir, 'server.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Route {
  status?: number;
  /** The body, or `file` to stream a file. */
  body?: string | Buffer;
  file?: string;
  headers?: Record<string, string>;
  /** Sends ETag and answers a matching If-None-Match with 304. */
  etag?: string;
}

export interface LoggedRequest {
  method: string;
  /** Path with query, as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  status: number;
}

export interface DiscoveryPage {
  /** `ac-discovery` entries: [prefix, URL template]. */
  discovery?: [string, string][];
  /** `ac-discovery-pubkeys` entries: [prefix, URL]. */
  pubkeys?: [string, string][];
}

export interface TestServer {
  /** `https://127.0.0.1:PORT` (no port when 443, `http://` when plain). */
  origin: string;
  port: number;
  tls: boolean;
  certs: Certs | null;
  /** Environment making rkt trust the test CA. */
  caEnv: Record<string, string>;
  log: LoggedRequest[];
  route(path: string, r: Route): void;
  /** Serves `file` (and `file.asc` when `sig` is given) at `path` / `path.asc`. */
  serveFile(path: string, file: string, sig?: string, extra?: Omit<Route, 'file' | 'body'>): void;
  /** Answers GET `path?ac-discovery=1` with meta tags. */
  discovery(path: string, page: DiscoveryPage): void;
  url(path: string): string;
  requests(path: string): LoggedRequest[];
  close(): Promise<void>;
}

function html(page: DiscoveryPage): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const metas = [
    ...(page.discovery ?? []).map(([p, t]) => `    <meta name="ac-discovery" content="${esc(p)} ${esc(t)}">`),
    ...(page.pubkeys ?? []).map(([p, u]) => `    <meta name="ac-discovery-pubkeys" content="${esc(p)} ${esc(u)}">`),
  ];
  return `<!DOCTYPE html>\n<html>\n  <head>\n    <title>rkt test discovery</title>\n${metas.join('\n')}\n  </head>\n  <body></body>\n</html>\n`;
}

/**
 * Starts a server on 127.0.0.1. `port: 0` (default) picks a free port; 443
 * needs root and a free port 443 (tests using it must run serially).
 * `tls: false` gives a plain HTTP server. `certs` reuses certificates.
 */
export async function startServer(opts: { port?: number; tls?: boolean; certs?: Certs } = {}): Promise<TestServer> {
  const tls = opts.tls ?? true;
  const ownCerts = tls && !opts.certs;
  const certs = tls ? (opts.certs ?? makeCerts()) : null;
  const routes = new Map<string, Route>();
  const pages = new Map<string, DiscoveryPage>();
  const log: LoggedRequest[] = [];

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: LoggedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', path: u.pathname, query: u.searchParams, headers: req.headers, status: 0 };
    log.push(entry);
    const send = (status: number, body: string | Buffer, headers: Record<string, string> = {}): void => {
      entry.status = status;
      res.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (u.searchParams.get('ac-discovery') === '1') {
      const page = pages.get(u.pathname);
      if (page) return send(200, html(page), { 'Content-Type': 'text/html; charset=utf-8' });
      return send(404, 'no discovery here\n');
    }
    const r = routes.get(u.pathname);
    if (!r) return send(404, 'not found\n');
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    if (r.etag !== undefined) {
      headers.ETag = r.etag;
      if (req.headers['if-none-match'] === r.etag) {
        entry.status = 304;
        res.writeHead(304, headers);
        res.end();
        return;
      }
    }
    const status = r.status ?? 200;
    if (r.file !== undefined) {
      entry.status = status;
      res.writeHead(status, { 'Content-Length': String(statSync(r.file).size), 'Content-Type': 'application/octet-stream', ...headers });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const s = createReadStream(r.file);
      s.on('error', () => res.destroy());
      s.pipe(res);
      return;
    }
    send(status, r.body ?? '', headers);
  };

  const server = tls && certs
    ? https.createServer({ key: readFileSync(certs.keyPath), cert: readFileSync(certs.certPath) }, handler)
    : http.createServer(handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s: import('node:net').Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // A failed TLS handshake (client rejecting our CA) is expected in tests.
  server.on('tlsClientError', () => {});
  server.on('clientError', (_e, s) => s.destroy());

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    if (ownCerts) certs?.cleanup();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const scheme = tls ? 'https' : 'http';
  const defaultPort = tls ? 443 : 80;
  const origin = port === defaultPort ? `${scheme}://127.0.0.1` : `${scheme}://127.0.0.1:${port}`;

  return {
    origin,
    port,
    tls,
    certs,
    caEnv: certs ? { NODE_EXTRA_CA_CERTS: certs.caPath } : {},
    log,
    route: (path, r) => void routes.set(path, r),
    serveFile(path, file, sig, extra = {}) {
      routes.set(path, { ...extra, file });
      if (sig !== undefined) routes.set(`${path}.asc`, { file: sig });
    },
    discovery: (path, page) => void pages.set(path, page),
    url: (path) => `${origin}${path}`,
    requests: (path) => log.filter((l) => l.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          if (ownCerts) certs?.cleanup();
          resolve();
        });
      }),
  };
}

/** Whether 127.0.0.1:443 can be bound right now (root and free). */
export async function canListen443(): Promise<{ ok: boolean; reason: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'binding port 443 needs root' };
  const s = http.createServer();
  return new Promise((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, reason: `cannot listen on 127.0.0.1:443: ${e.code ?? e.message}` }));
    s.listen(443, '127.0.0.1', () => s.close(() => resolve({ ok: true, reason: '' })));
  });
}

/** GET with a bounded number of attempts, each bounded in time. */
export async function httpGet(url: string, attempts = 20): Promise<string> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = http.get(url, { timeout: 2000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  throw new Error(`GET ${url} failed: ${String(last)}`);
}
