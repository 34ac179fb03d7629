// OCI runtime spec (config.json) for one app container, and for the pod's
// pause container. Pure: data in, JSON-ready object out.

/** appc's default capability bounding set, which rkt applies (inventory 5.5). */
export const DEFAULT_CAPS = [
  'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_KILL', 'CAP_MKNOD',
  'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETFCAP', 'CAP_SYS_CHROOT',
];

/** rkt's read-only and inaccessible paths (stage1/init/common/path.go), lifted by --insecure-options=paths. */
export const READONLY_PATHS = [
  '/proc/bus', '/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sys/vm/panic_on_oom', '/proc/sysrq-trigger',
  '/sys/block', '/sys/bus', '/sys/class', '/sys/dev', '/sys/devices', '/sys/kernel',
];
export const MASKED_PATHS = [
  '/sys/firmware', '/sys/fs', '/sys/hypervisor', '/sys/module', '/sys/power',
  '/proc/config.gz', '/proc/kallsyms', '/proc/sched_debug', '/proc/kcore', '/proc/kmem', '/proc/mem',
];

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export type NsSpec = 'new' | 'host' | { path: string };

export interface AppContainer {
  rootfs: string;
  readonlyRootfs: boolean;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  hostname: string;
  terminal: boolean;
  namespaces: { pid: NsSpec; network: NsSpec; ipc: NsSpec; uts: NsSpec; user?: NsSpec };
  mounts: OciMount[];
  /** Host path of an init (catatonit) bound at /dev/init and run as the container's PID 1. */
  init?: string | undefined;
  caps: string[];
  /** --insecure-options=paths: no masked or read-only paths, writable /sys. */
  insecurePaths: boolean;
  cgroupsPath: string;
  noNewPrivileges: boolean;
  /** OCI linux.seccomp (stage1/seccomp.ts); undefined = no filter. */
  seccomp?: Record<string, unknown> | undefined;
  /** OCI linux.resources besides devices (memory, cpu): stage1/security.ts. */
  resources?: Record<string, unknown> | undefined;
  oomScoreAdj?: number | undefined;
  /** --private-users: user namespace and its mappings (pod/userns.ts). */
  userns?: { uidBase: number; count: number } | undefined;
}

const BASE_MOUNTS = (sysRo: boolean): OciMount[] => [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...(sysRo ? ['ro'] : [])] },
];

function namespaces(ns: AppContainer['namespaces']): { type: string; path?: string }[] {
  const out: { type: string; path?: string }[] = [{ type: 'mount' }];
  const add = (type: string, spec: NsSpec) => {
    if (spec === 'host') return;
    out.push(spec === 'new' ? { type } : { type, path: spec.path });
  };
  add('pid', ns.pid);
  add('network', ns.network);
  add('ipc', ns.ipc);
  add('uts', ns.uts);
  return out;
}

function idMappings(u: { uidBase: number; count: number }): Record<string, unknown> {
  const m = [{ containerID: 0, hostID: u.uidBase, size: u.count }];
  return { uidMappings: m, gidMappings: m };
}

/** sysfs can only be mounted by a user namespace that owns the network namespace: with the host's, bind the host's /sys. */
function sysBind(m: OciMount): OciMount {
  return m.type === 'sysfs' ? { destination: m.destination, type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', ...(m.options.includes('ro') ? ['ro'] : [])] } : m;
}

export function appSpec(c: AppContainer): Record<string, unknown> {
  const mounts = [...BASE_MOUNTS(!c.insecurePaths)];
  let args = c.args;
  if (c.init) {
    mounts.push({ destination: '/dev/init', type: 'bind', source: c.init, options: ['bind', 'ro', 'nosuid', 'nodev'] });
    args = ['/dev/init', '--', ...c.args];
  }
  mounts.push(...c.mounts);
  const ownUts = c.namespaces.uts === 'new';
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: c.terminal,
      user: { uid: c.uid, gid: c.gid, ...(c.additionalGids.length ? { additionalGids: c.additionalGids } : {}) },
      args,
      env: c.env,
      cwd: c.cwd,
      capabilities: { bounding: c.caps, effective: c.uid === 0 ? c.caps : [], permitted: c.uid === 0 ? c.caps : [], inheritable: [], ambient: [] },
      noNewPrivileges: c.noNewPrivileges,
      ...(c.oomScoreAdj !== undefined ? { oomScoreAdj: c.oomScoreAdj } : {}),
    },
    root: { path: c.rootfs, readonly: c.readonlyRootfs },
    ...(ownUts ? { hostname: c.hostname } : {}),
    // A network namespace the pod's user namespace does not own: the host's, or one joined by path without joining its owner (CNI).
    mounts: c.userns && (c.namespaces.network === 'host' || (typeof c.namespaces.network === 'object' && c.namespaces.user === undefined)) ? mounts.map(sysBind) : mounts,
    linux: {
      namespaces: [...namespaces(c.namespaces), ...(c.userns ? [typeof c.namespaces.user === 'object' ? { type: 'user', path: c.namespaces.user.path } : { type: 'user' }] : [])],
      ...(c.userns ? idMappings(c.userns) : {}),
      cgroupsPath: c.cgroupsPath,
      resources: { ...(c.resources ?? {}), devices: [{ allow: false, access: 'rwm' }] },
      ...(c.insecurePaths ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
      ...(c.seccomp ? { seccomp: c.seccomp } : {}),
    },
  };
}

/** The pause container: catatonit -P holding the pod's pid, net, ipc and uts namespaces. */
export function pauseSpec(opts: { rootfs: string; catatonit: string; hostname: string; network: NsSpec; cgroupsPath: string; userns?: { uidBase: number; count: number } | undefined }): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/dev/init', '-P'],
      env: ['PATH=/'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs, readonly: true },
    hostname: opts.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=64k'] },
      { destination: '/dev/init', type: 'bind', source: opts.catatonit, options: ['bind', 'ro', 'nosuid', 'nodev'] },
    ],
    linux: {
      namespaces: [...namespaces({ pid: 'new', network: opts.network, ipc: 'new', uts: 'new' }), ...(opts.userns ? [{ type: 'user' }] : [])],
      ...(opts.userns ? idMappings(opts.userns) : {}),
      cgroupsPath: opts.cgroupsPath,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}

/** Capability names by number (linux/capability.h). */
export const CAP_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Capability names in a /proc/PID/status mask (hex). Pure. */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return CAP_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/**
 * "All capabilities" means all that the caller holds: asking runc for one
 * outside our own bounding set fails (root here may lack CAP_SYS_RESOURCE).
 */
export function hostCaps(status: string): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return m ? capsFromMask(m[1] as string) : [...CAP_NAMES];
}

/**
 * The fly flavor: a chroot into the app's rootfs with the host's pid, net,
 * ipc and uts namespaces, the host's /dev, /proc and /sys, all capabilities
 * and no masked paths (rkt's stage1-fly, for system tools). Only the mount
 * namespace is the app's own.
 */
export function flySpec(c: Omit<AppContainer, 'namespaces' | 'insecurePaths' | 'init' | 'hostname' | 'noNewPrivileges'>): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: c.terminal,
      user: { uid: c.uid, gid: c.gid, ...(c.additionalGids.length ? { additionalGids: c.additionalGids } : {}) },
      args: c.args,
      env: c.env,
      cwd: c.cwd,
      capabilities: { bounding: c.caps, effective: c.caps, permitted: c.caps, inheritable: [], ambient: [] },
      noNewPrivileges: false,
    },
    root: { path: c.rootfs, readonly: c.readonlyRootfs },
    mounts: [
      { destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] },
      { destination: '/proc', type: 'bind', source: '/proc', options: ['rbind'] },
      { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      ...c.mounts,
    ],
    linux: {
      namespaces: [{ type: 'mount' }],
      cgroupsPath: c.cgroupsPath,
      resources: { devices: [{ allow: true, access: 'rwm' }] },
    },
  };
}
