// Test fixtures for Docker/OCI images: OCI image layouts written directly
// (tar-stream + gzip), a docker-registry on 127.0.0.1 (Debian's
// docker-registry), and a fault-injecting / token-auth proxy in front of it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { gzipSync } from 'node:zlib';

export interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  body?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    pack.entry(
      {
        name: e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: new Date(1_600_000_000_000),
        ...(e.linkname ? { linkname: e.linkname } : {}),
        ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
        ...(e.pax ? { pax: e.pax } : {}),
      },
      type === 'file' ? (e.body ?? '') : '',
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface ImageSpec {
  layers: Entry[][];
  config?: Record<string, unknown>;
  /** Override the layer media type (bad-input tests). */
  layerMediaType?: string;
}

/** Writes an OCI image layout at dir with one image named tag. */
export async function writeOciLayout(dir: string, tag: string, spec: ImageSpec): Promise<void> {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const layers = [];
  const diffIds = [];
  for (const entries of spec.layers) {
    const t = await tarOf(entries);
    const gz = gzipSync(t);
    diffIds.push(sha(t));
    layers.push({ mediaType: spec.layerMediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(gz), size: gz.length });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] , ...spec.config }, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: config.length }, layers }));
  const md = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
}

/**
 * skopeo run as root keeps a blob-info cache in /var/lib/containers/cache
 * (no flag moves it). Returns what removes it again if it was not there before.
 */
export function skopeoCacheGuard(): () => void {
  const base = '/var/lib/containers';
  const cache = `${base}/cache`;
  const hadBase = existsSync(base);
  const hadCache = existsSync(cache);
  return () => {
    if (!hadCache) rmSync(cache, { recursive: true, force: true });
    if (!hadBase) rmSync(base, { recursive: true, force: true });
  };
}

export function skopeo(args: string[]): void {
  const r = spawnSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

export interface RegistryProc {
  port: number;
  proc: ChildProcess;
  stop(): void;
}

export async function startRegistry(dir: string): Promise<RegistryProc> {
  const port = await freePort();
  mkdirSync(join(dir, 'data'), { recursive: true });
  const conf = join(dir, 'config.yml');
  writeFileSync(conf, `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const proc = spawn('docker-registry', ['serve', conf], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      http.get(`http://127.0.0.1:${port}/v2/`, (res) => {
        res.resume();
        r(res.statusCode === 200);
      }).on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, proc, stop: () => proc.kill('SIGTERM') };
}

export type Fault = { match: RegExp; status?: number; body?: string; contentType?: string; corrupt?: boolean; truncate?: boolean; slowMs?: number; count?: number };

export interface Proxy {
  port: number;
  faults: Fault[];
  /** Bearer token auth: user/password accepted by the token endpoint; undefined = no auth. */
  auth: { user: string; password: string } | undefined;
  hits: string[];
  close(): Promise<void>;
}

/** A proxy to the registry that can require token auth and inject faults. */
export async function startProxy(upstream: number): Promise<Proxy> {
  const port = await freePort();
  const token = 'tok-' + Math.random().toString(36).slice(2);
  const p: Proxy = { port, faults: [], auth: undefined, hits: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    p.hits.push(url);
    if (url.startsWith('/token')) {
      const want = p.auth ? `Basic ${Buffer.from(`${p.auth.user}:${p.auth.password}`).toString('base64')}` : '';
      if (req.headers.authorization !== want) {
        res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
      return;
    }
    if (p.auth && url !== '/v2/' && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:x:pull"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const f = p.faults.find((x) => x.match.test(url) && (x.count === undefined || x.count > 0));
    if (f && f.count !== undefined) f.count--;
    if (f && f.status !== undefined) {
      res.writeHead(f.status, { 'content-type': f.contentType ?? 'application/json' }).end(f.body ?? '{"errors":[{"code":"INJECTED","message":"injected fault"}]}');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: upstream, path: url, method: req.method, headers: { ...req.headers, host: `127.0.0.1:${upstream}` } }, (ures) => {
      const headers = { ...ures.headers };
      if (ures.headers.location) headers.location = ures.headers.location.replace(`127.0.0.1:${upstream}`, `127.0.0.1:${port}`);
      if (!f || !(f.corrupt || f.truncate || f.slowMs)) {
        res.writeHead(ures.statusCode ?? 502, headers);
        ures.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      ures.on('data', (c: Buffer) => chunks.push(c));
      ures.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(ures.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
        if (f.corrupt) {
          const i = Math.floor(body.length / 2);
          body[i] = (body[i] as number) ^ 0xff;
          res.end(body);
        } else if (f.truncate) {
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        } else {
          let off = 0;
          const step = () => {
            if (off >= body.length) return void res.end();
            res.write(body.subarray(off, off + 4096));
            off += 4096;
            setTimeout(step, f.slowMs);
          };
          step();
        }
      });
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  p.close = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return p;
}
