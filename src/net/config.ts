// Which networks a pod gets (rkt's networking/podenv.go): the --net grammar,
// the built-in networks and the net.d configuration files. Pure except for
// reading the net.d directories.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError } from '../lib/errors.ts';

export interface NetRequest {
  name: string;
  /** CNI_ARGS, `K=V;K2=V2` as given after the colon. */
  args: string;
}

export type NetSelection =
  | { kind: 'host' }
  | { kind: 'none' }
  | { kind: 'contained'; requests: NetRequest[]; all: boolean };

/** A network definition: one CNI plugin configuration (a `.conf` file). */
export interface NetConf {
  name: string;
  type: string;
  /** Where it came from: a file path, or `builtin:<file>`. */
  file: string;
  /** Sort key: the file's base name (rkt applies networks in file-name order). */
  order: string;
  conf: Record<string, unknown>;
}

/** rkt's stage1 `etc/rkt/net.d/99-default.conf` and `99-default-restricted.conf`. */
export const BUILTIN_NETS: readonly NetConf[] = [
  {
    name: 'default',
    type: 'ptp',
    file: 'builtin:99-default.conf',
    order: '99-default.conf',
    conf: { cniVersion: '0.4.0', name: 'default', type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '172.16.28.0/24', routes: [{ dst: '0.0.0.0/0' }] } },
  },
  {
    name: 'default-restricted',
    type: 'ptp',
    file: 'builtin:99-default-restricted.conf',
    order: '99-default-restricted.conf',
    conf: { cniVersion: '0.4.0', name: 'default-restricted', type: 'ptp', ipMasq: false, ipam: { type: 'host-local', subnet: '172.31.0.0/16' } },
  },
];

const RESERVED = new Set(['host', 'none', 'all']);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Parses the values of every --net flag (each may hold a comma-separated list). */
export function parseNetFlags(values: readonly string[]): NetSelection {
  const items = values.flatMap((v) => v.split(',')).map((n) => n.trim()).filter((n) => n !== '');
  if (items.length === 0) return { kind: 'contained', requests: [{ name: 'default', args: '' }], all: false };
  const reqs: NetRequest[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const colon = item.indexOf(':');
    const name = colon < 0 ? item : item.slice(0, colon);
    const args = colon < 0 ? '' : item.slice(colon + 1);
    if (name === '') throw new RktError('USAGE', `invalid --net value "${item}": empty network name`);
    if (seen.has(name)) throw new RktError('USAGE', `network "${name}" given more than once`);
    seen.add(name);
    if (args !== '') {
      if (name === 'host' || name === 'none' || name === 'all') throw new RktError('USAGE', `--net=${name} takes no arguments`);
      for (const kv of args.split(';')) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*=[^;]*$/.test(kv)) throw new RktError('USAGE', `invalid CNI argument "${kv}" for network "${name}": use ${name}:KEY=VALUE;KEY2=VALUE2`);
      }
    }
    reqs.push({ name, args });
  }
  const names = reqs.map((r) => r.name);
  if (names.includes('host')) {
    if (names.length > 1) throw new RktError('USAGE', '--net=host cannot be combined with other networks');
    return { kind: 'host' };
  }
  if (names.includes('none')) {
    if (names.length > 1) throw new RktError('USAGE', '--net=none cannot be combined with other networks');
    return { kind: 'none' };
  }
  const all = names.includes('all');
  return { kind: 'contained', requests: reqs.filter((r) => r.name !== 'all'), all };
}

/** Validates one parsed net.d file. Pure. */
export function parseNetConf(text: string, file: string): NetConf {
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (e) {
    throw new RktError('CONFIG', `malformed network configuration ${file}: ${(e as Error).message}`);
  }
  if (conf === null || typeof conf !== 'object' || Array.isArray(conf)) throw new RktError('CONFIG', `malformed network configuration ${file}: not a JSON object`);
  const c = conf as Record<string, unknown>;
  if (typeof c.name !== 'string' || !NAME_RE.test(c.name)) throw new RktError('CONFIG', `malformed network configuration ${file}: "name" must be a network name ([A-Za-z0-9_.-])`);
  if (RESERVED.has(c.name)) throw new RktError('CONFIG', `network configuration ${file}: the name "${c.name}" is reserved`);
  if (typeof c.type !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(c.type)) throw new RktError('CONFIG', `malformed network configuration ${file}: "type" must name a CNI plugin`);
  if (c.cniVersion !== undefined && typeof c.cniVersion !== 'string') throw new RktError('CONFIG', `malformed network configuration ${file}: "cniVersion" must be a string`);
  if (c.ipam !== undefined) {
    const ipam = c.ipam as Record<string, unknown>;
    if (ipam === null || typeof ipam !== 'object' || Array.isArray(ipam) || (ipam.type !== undefined && (typeof ipam.type !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(ipam.type)))) {
      throw new RktError('CONFIG', `malformed network configuration ${file}: "ipam" must be an object with a plugin "type"`);
    }
  }
  if (c.ipMasq !== undefined && typeof c.ipMasq !== 'boolean') throw new RktError('CONFIG', `malformed network configuration ${file}: "ipMasq" must be true or false`);
  const base = file.split('/').at(-1) as string;
  return { name: c.name, type: c.type, file, order: base, conf: { cniVersion: '0.4.0', ...c } };
}

/**
 * All known networks: the built-ins, then `<local-config>/net.d/*.conf`, then
 * `<user-config>/net.d/*.conf`; a later definition replaces an earlier one of
 * the same name. Two files of one directory defining the same name is an error.
 */
export function loadNetConfs(dirs: readonly string[]): Map<string, NetConf> {
  const out = new Map<string, NetConf>(BUILTIN_NETS.map((n) => [n.name, n]));
  for (const base of dirs) {
    if (!base) continue;
    const dir = join(base, 'net.d');
    if (!existsSync(dir)) continue;
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.conf')).sort();
    } catch (e) {
      throw new RktError('CONFIG', `cannot read ${dir}: ${(e as Error).message}`);
    }
    const here = new Set<string>();
    for (const n of names) {
      const file = join(dir, n);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new RktError('CONFIG', `cannot read network configuration ${file}: ${(e as Error).message}`);
      }
      const c = parseNetConf(text, file);
      if (here.has(c.name)) throw new RktError('CONFIG', `network "${c.name}" is defined twice in ${dir}`);
      here.add(c.name);
      out.set(c.name, c);
    }
  }
  return out;
}

export interface ChosenNet {
  net: NetConf;
  args: string;
  ifName: string;
}

/**
 * The networks of a contained pod, in file-name order, each with its
 * interface (eth0, eth1…). `default-restricted` is added when `default`
 * is not asked for (rkt: for the metadata service). `all` = every network
 * defined in net.d plus `default`.
 */
export function chooseNets(sel: Extract<NetSelection, { kind: 'contained' }>, confs: Map<string, NetConf>): ChosenNet[] {
  const want = new Map<string, string>();
  const missing: string[] = [];
  for (const r of sel.requests) {
    if (!confs.has(r.name)) missing.push(r.name);
    want.set(r.name, r.args);
  }
  if (missing.length > 0) throw new RktError('NOT_FOUND', `networks not found: ${missing.join(', ')}`, { hint: 'networks are defined in <local-config>/net.d/*.conf and <user-config>/net.d/*.conf; built in: default, default-restricted' });
  if (sel.all) {
    for (const c of confs.values()) if (!c.file.startsWith('builtin:') && !want.has(c.name)) want.set(c.name, '');
    if (!want.has('default')) want.set('default', '');
  }
  if (!want.has('default') && !want.has('default-restricted')) want.set('default-restricted', '');
  const list = [...want.entries()].map(([name, args]) => ({ net: confs.get(name) as NetConf, args }));
  list.sort((a, b) => (a.net.order < b.net.order ? -1 : a.net.order > b.net.order ? 1 : a.net.name < b.net.name ? -1 : 1));
  return list.map((x, i) => ({ ...x, ifName: `eth${i}` }));
}
