// Invoking CNI plugins per the CNI spec (env + config on stdin, result on
// stdout), and reading their results (0.1.0/0.2.0 `ip4`/`ip6` and
// 0.3.0+ `ips`/`interfaces`). Parsing is pure.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';
import { childProcess } from '../lib/builtins.ts';

/** Where plugins are looked up: RKT_CNI_PATH, else the usual directories. */
export function cniPath(): string[] {
  const env = process.env.RKT_CNI_PATH;
  if (env) return env.split(':').filter((d) => d !== '');
  return ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni', '/usr/lib/rkt/plugins/net'];
}

export function findPlugin(type: string, path: readonly string[] = cniPath()): string | undefined {
  for (const d of path) {
    const p = join(d, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface CniIp {
  version: '4' | '6';
  /** CIDR: address/prefix. */
  address: string;
  gateway?: string | undefined;
  interface?: number | undefined;
}

export interface CniResult {
  cniVersion: string;
  interfaces: { name: string; mac?: string; sandbox?: string }[];
  ips: CniIp[];
  routes: { dst: string; gw?: string }[];
  dns: { nameservers: string[]; domain?: string | undefined; search: string[]; options: string[] };
}

function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Normalises a plugin's result (any CNI version). Pure. */
export function parseCniResult(text: string): CniResult {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new RktError('INTERNAL', `CNI plugin returned invalid JSON: ${text.slice(0, 200)}`);
  }
  if (r === null || typeof r !== 'object') throw new RktError('INTERNAL', 'CNI plugin returned a non-object result');
  const out: CniResult = { cniVersion: String(r.cniVersion ?? ''), interfaces: [], ips: [], routes: [], dns: { nameservers: [], search: [], options: [] } };
  if (Array.isArray(r.interfaces)) {
    for (const i of r.interfaces as Record<string, unknown>[]) {
      if (i && typeof i.name === 'string') out.interfaces.push({ name: i.name, ...(typeof i.mac === 'string' ? { mac: i.mac } : {}), ...(typeof i.sandbox === 'string' ? { sandbox: i.sandbox } : {}) });
    }
  }
  const addRoutes = (v: unknown) => {
    if (!Array.isArray(v)) return;
    for (const rt of v as Record<string, unknown>[]) if (rt && typeof rt.dst === 'string') out.routes.push({ dst: rt.dst, ...(typeof rt.gw === 'string' ? { gw: rt.gw } : {}) });
  };
  if (Array.isArray(r.ips)) {
    for (const ip of r.ips as Record<string, unknown>[]) {
      if (!ip || typeof ip.address !== 'string') continue;
      const version = ip.version === '6' || ip.address.includes(':') ? '6' : '4';
      out.ips.push({ version, address: ip.address, gateway: typeof ip.gateway === 'string' ? ip.gateway : undefined, interface: typeof ip.interface === 'number' ? ip.interface : undefined });
    }
    addRoutes(r.routes);
  }
  for (const [key, version] of [['ip4', '4'], ['ip6', '6']] as const) {
    const ip = r[key] as Record<string, unknown> | undefined;
    if (ip && typeof ip.ip === 'string') {
      out.ips.push({ version, address: ip.ip, gateway: typeof ip.gateway === 'string' ? ip.gateway : undefined });
      addRoutes(ip.routes);
    }
  }
  const dns = r.dns as Record<string, unknown> | undefined;
  if (dns && typeof dns === 'object') {
    out.dns = { nameservers: strs(dns.nameservers), domain: typeof dns.domain === 'string' && dns.domain ? dns.domain : undefined, search: strs(dns.search), options: strs(dns.options) };
  }
  return out;
}

/** A CNI error result `{code, msg, details}` as one line. Pure. */
export function cniErrorText(stdout: string, stderr: string): string {
  try {
    const e = JSON.parse(stdout) as { msg?: string; details?: string };
    if (e && typeof e.msg === 'string') return e.details ? `${e.msg}: ${e.details}` : e.msg;
  } catch {
    /* not JSON */
  }
  const t = (stderr.trim() || stdout.trim()).split('\n').at(-1) ?? '';
  return t || 'failed without a message';
}

export interface Invocation {
  command: 'ADD' | 'DEL' | 'CHECK';
  plugin: string;
  containerId: string;
  netns: string;
  ifName: string;
  args: string;
  path: readonly string[];
  conf: Record<string, unknown>;
}

function pluginEnv(i: Invocation): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: i.command,
    CNI_CONTAINERID: i.containerId,
    CNI_NETNS: i.netns,
    CNI_IFNAME: i.ifName,
    CNI_ARGS: i.args,
    CNI_PATH: i.path.join(':'),
  };
}

const TIMEOUT_MS = 30_000;

/** Runs one plugin; resolves with its stdout, rejects with a RktError carrying the plugin's message. */
export function invoke(i: Invocation): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(i.plugin, [], { env: pluginEnv(i), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RktError('NOT_FOUND', `cannot run CNI plugin ${i.plugin}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(stdout);
      else reject(new RktError('STATE', `${signal ? `killed by ${signal}` : cniErrorText(stdout, Buffer.concat(err).toString('utf8'))}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(i.conf));
  });
}

/** Synchronous variant (teardown): returns the error text, or undefined on success. */
export function invokeSync(i: Invocation): string | undefined {
  const r = childProcess().spawnSync(i.plugin, [], { env: pluginEnv(i), input: JSON.stringify(i.conf), timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
  if (r.status === 0) return undefined;
  return r.error ? r.error.message : cniErrorText(r.stdout?.toString() ?? '', r.stderr?.toString() ?? '');
}
