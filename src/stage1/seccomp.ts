// Seccomp for apps (inventory 5.5): rkt's syscall groups, the
// `--seccomp` flag / `os/linux/seccomp-{retain,remove}-set` isolators, and
// the OCI `linux.seccomp` section runc loads. Pure.
//
// Semantics as rkt: no seccomp isolator ⇒ the allow-list
// `@rkt/default-whitelist`; `mode=retain` ⇒ only the listed syscalls (plus
// nothing else), `mode=remove` ⇒ everything but the listed ones. A denied
// syscall kills the process with SIGSYS unless `errno=` is given, in which
// case it fails with that errno. `@appc.io/all` in a retain set turns
// seccomp off; `@appc.io/empty` in a remove set means the default allow-list.
import { RktError } from '../lib/errors.ts';

/** Docker's (2016) default allow-list, which rkt adopted as `@rkt/default-whitelist`. */
const DOCKER_DEFAULT_ALLOW = `
accept accept4 access alarm bind brk capget capset chdir chmod chown chown32 clock_getres clock_gettime
clock_nanosleep close connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64
fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
ioprio_get ioprio_set io_setup io_submit ipc kill lchown lchown32 lgetxattr link linkat listen listxattr
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise memfd_create mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep
newfstatat _newselect open openat pause personality pipe pipe2 poll ppoll prctl pread64 preadv prlimit64
pselect6 pwrite64 pwritev read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl
shmdt shmget shutdown sigaltstack signalfd signalfd4 sigreturn socket socketcall socketpair splice stat
stat64 statfs statfs64 symlink symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time
timer_create timer_delete timerfd_create timerfd_gettime timerfd_settime timer_getoverrun timer_gettime
timer_settime times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimes
vfork vmsplice wait4 waitid waitpid write writev arch_prctl modify_ldt chroot clone`;

/** Docker's default deny-list: `@rkt/default-blacklist`. */
const DOCKER_DEFAULT_DENY = `
acct add_key adjtimex bpf clock_adjtime clock_settime create_module delete_module finit_module
get_kernel_syms get_mempolicy init_module ioperm iopl kcmp kexec_file_load kexec_load keyctl lookup_dcookie
mbind mount move_pages name_to_handle_at nfsservctl open_by_handle_at perf_event_open pivot_root
process_vm_readv process_vm_writev ptrace query_module quotactl reboot request_key set_mempolicy setns
settimeofday stime swapon swapoff sysfs _sysctl umount umount2 unshare uselib userfaultfd ustat vm86 vm86old`;

/** Extra entries rkt added on arm/arm64. */
const ARM_EXTRA = 'arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls sync_file_range2';

const words = (s: string): string[] => s.split(/\s+/).filter((w) => w !== '');

// systemd's syscall groups that rkt passed through (`@systemd/NAME` ⇒
// systemd's `@NAME`, systemd >= 231). Without systemd in stage1 the
// groups are expanded here.
const SYSTEMD_SETS: Record<string, string> = {
  clock: 'adjtimex clock_adjtime clock_settime settimeofday stime',
  'default-whitelist': `clock_getres clock_gettime clock_nanosleep execve exit exit_group futex get_robust_list
    get_thread_area getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getpgid getpgrp
    getpid getppid getresgid getresgid32 getresuid getresuid32 getrlimit getsid gettid gettimeofday getuid
    getuid32 membarrier nanosleep pause prlimit64 restart_syscall rseq rt_sigreturn sched_yield set_robust_list
    set_thread_area set_tid_address set_tls sigreturn time ugetrlimit`,
  mount: 'chroot fsconfig fsmount fsopen fspick mount move_mount open_tree pivot_root umount umount2',
  'network-io': `accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom recvmmsg
    recvmsg send sendmmsg sendmsg sendto setsockopt shutdown socket socketcall socketpair`,
  obsolete: `_sysctl afs_syscall bdflush break create_module ftime get_kernel_syms getpmsg gtty idle lock mpx
    prof profil putpmsg query_module security sgetmask ssetmask stty sysfs tuxcall ulimit uselib ustat vserver`,
  privileged: `chown chown32 fchown fchown32 fchownat lchown lchown32 adjtimex clock_adjtime clock_settime
    settimeofday stime delete_module finit_module init_module ioperm iopl pciconfig_iobase pciconfig_read
    pciconfig_write kexec_file_load kexec_load reboot swapoff swapon _sysctl acct bpf capset chroot
    fanotify_init fanotify_mark nfsservctl open_by_handle_at pivot_root quotactl setdomainname setfsuid
    setfsuid32 setgroups setgroups32 sethostname setresuid setresuid32 setreuid setreuid32 setuid setuid32 vhangup`,
  process: `arch_prctl capget clone clone3 execveat fork getrusage kill pidfd_open pidfd_send_signal prctl
    rt_sigqueueinfo rt_tgsigqueueinfo setns swapcontext tgkill times tkill unshare vfork wait4 waitid waitpid`,
  'raw-io': 'ioperm iopl pciconfig_iobase pciconfig_read pciconfig_write',
};

export function defaultAllowList(arch: string = process.arch): string[] {
  const base = words(DOCKER_DEFAULT_ALLOW);
  return arch === 'arm' || arch === 'arm64' ? [...base, ...words(ARM_EXTRA)] : base;
}

export function defaultDenyList(): string[] {
  return words(DOCKER_DEFAULT_DENY);
}

/** Every group name accepted in a seccomp set. */
export const SECCOMP_GROUPS: readonly string[] = [
  '@appc.io/all', '@appc.io/empty',
  '@docker/default-whitelist', '@docker/default-blacklist',
  '@rkt/default-whitelist', '@rkt/default-blacklist',
  ...Object.keys(SYSTEMD_SETS).map((k) => `@systemd/${k}`),
];

/** Expands one group (`@scope/name`) into syscall names. */
export function expandGroup(group: string): string[] {
  const [scope, name] = group.split('/', 2) as [string, string | undefined];
  switch (scope) {
    case '@docker':
    case '@rkt':
      if (name === 'default-whitelist') return defaultAllowList();
      if (name === 'default-blacklist') return defaultDenyList();
      break;
    case '@systemd':
      if (name !== undefined && SYSTEMD_SETS[name] !== undefined) return words(SYSTEMD_SETS[name]);
      break;
    default:
      break;
  }
  throw new RktError('USAGE', `unknown seccomp group "${group}"`, { hint: `known groups: ${SECCOMP_GROUPS.join(', ')}` });
}

const SYSCALL_NAME = /^[a-z_][a-z0-9_]*$/;

/** Linux errno names accepted in `errno=` (those SystemCallErrorNumber= took), with their x86/arm numbers. */
export const ERRNOS: Record<string, number> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28,
  ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37,
  ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, EIDRM: 43, ENOSTR: 60, ENODATA: 61, ETIME: 62, ENOSR: 63,
  EREMOTE: 66, ENOLINK: 67, EPROTO: 71, EBADMSG: 74, EOVERFLOW: 75, EILSEQ: 84, EUSERS: 87, ENOTSOCK: 88,
  EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92, EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95, ENOTSUP: 95, EPFNOSUPPORT: 96, EAFNOSUPPORT: 97, EADDRINUSE: 98, EADDRNOTAVAIL: 99,
  ENETDOWN: 100, ENETUNREACH: 101, ENETRESET: 102, ECONNABORTED: 103, ECONNRESET: 104, ENOBUFS: 105,
  EISCONN: 106, ENOTCONN: 107, ESHUTDOWN: 108, ETOOMANYREFS: 109, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTDOWN: 112, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116, EDQUOT: 122,
  ECANCELED: 125, EOWNERDEAD: 130, ENOTRECOVERABLE: 131, ERFKILL: 132, EHWPOISON: 133,
};

/** An appc seccomp isolator value. */
export interface SeccompIsolator {
  mode: 'retain' | 'remove';
  set: string[];
  errno?: string | undefined;
}

/** Parses `--seccomp mode=retain|remove[,errno=EXXX],SYSCALL,@GROUP…` (rkt's flag). */
export function parseSeccompFlag(value: string): SeccompIsolator {
  let mode: 'retain' | 'remove' | undefined;
  let errno: string | undefined;
  const set: string[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq >= 0) {
      const k = item.slice(0, eq);
      const v = item.slice(eq + 1);
      if (k === 'mode') {
        if (v !== 'retain' && v !== 'remove') throw new RktError('USAGE', `invalid --seccomp mode "${v}": use retain or remove`);
        if (mode) throw new RktError('USAGE', '--seccomp: mode given twice');
        mode = v;
      } else if (k === 'errno') {
        if (errno) throw new RktError('USAGE', '--seccomp: errno given twice');
        errno = v;
      } else throw new RktError('USAGE', `invalid --seccomp option "${k}": expected mode= or errno=`);
      continue;
    }
    set.push(item);
  }
  if (!mode) throw new RktError('USAGE', `invalid --seccomp "${value}": mode=retain or mode=remove is required`);
  const iso: SeccompIsolator = { mode, set, ...(errno !== undefined ? { errno } : {}) };
  validateSeccomp(iso);
  return iso;
}

export function validateSeccomp(iso: SeccompIsolator): void {
  if (iso.set.length === 0) throw new RktError('USAGE', `seccomp ${iso.mode} set is empty`, { hint: 'list syscalls or @groups' });
  for (const s of iso.set) {
    if (s.startsWith('@')) {
      if (!SECCOMP_GROUPS.includes(s)) expandGroup(s);
    } else if (!SYSCALL_NAME.test(s)) throw new RktError('USAGE', `invalid syscall name "${s}" in seccomp set`);
  }
  if (iso.errno !== undefined && ERRNOS[iso.errno] === undefined) throw new RktError('USAGE', `unknown errno "${iso.errno}" in seccomp isolator`, { hint: 'use a name such as EPERM or ENOSYS' });
}

/** What the filter does, resolved: undefined = no filter at all. */
export interface SeccompPolicy {
  /** allow = only `syscalls` are allowed; deny = `syscalls` are denied, the rest allowed. */
  kind: 'allow' | 'deny';
  syscalls: string[];
  /** errno returned by a denied syscall; undefined ⇒ SIGSYS. */
  errno?: string | undefined;
}

/**
 * The policy of an app from its (at most one) seccomp isolator, as rkt's
 * getSeccompFilter: none ⇒ default allow-list; retain with @appc.io/all ⇒
 * no filter; remove with @appc.io/empty ⇒ default allow-list.
 */
export function seccompPolicy(iso: SeccompIsolator | undefined): SeccompPolicy | undefined {
  if (!iso) return { kind: 'allow', syscalls: defaultAllowList() };
  if (iso.mode === 'retain' && iso.set.includes('@appc.io/all')) return undefined;
  if (iso.mode === 'remove' && iso.set.includes('@appc.io/empty')) return { kind: 'allow', syscalls: defaultAllowList(), ...(iso.errno ? { errno: iso.errno } : {}) };
  const out = new Set<string>();
  for (const s of iso.set) {
    if (s === '@appc.io/all' || s === '@appc.io/empty') continue;
    for (const x of s.startsWith('@') ? expandGroup(s) : [s]) out.add(x);
  }
  if (out.size === 0) return { kind: 'allow', syscalls: defaultAllowList(), ...(iso.errno ? { errno: iso.errno } : {}) };
  return { kind: iso.mode === 'retain' ? 'allow' : 'deny', syscalls: [...out].sort(), ...(iso.errno ? { errno: iso.errno } : {}) };
}

// The filter covers the native ABI only: syscalls through another ABI (i386
// `int 0x80`, x32) match no listed architecture and libseccomp refuses them,
// like systemd's SystemCallArchitectures=native. Listing the compat ABIs as
// docker does triples the filter runc compiles at every start (~12 ms here).
const OCI_ARCHES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64'],
  arm64: ['SCMP_ARCH_AARCH64'],
  arm: ['SCMP_ARCH_ARM'],
  ia32: ['SCMP_ARCH_X86'],
};

/*
 * Syscalls newer than the default allow-list (docker's 2016 list ends with
 * copy_file_range). runc answers ENOSYS for syscall numbers above the
 * highest one in a filter, so that a libc falls back from clone3, statx,
 * rseq, faccessat2… instead of being killed; crun has no such rule. Naming
 * them with ERRNO(ENOSYS) gives the same behaviour under both runtimes.
 */
const NEWER_SYSCALLS = [
  'preadv2', 'pwritev2', 'pkey_mprotect', 'pkey_alloc', 'pkey_free', 'statx', 'io_pgetevents', 'rseq',
  'pidfd_send_signal', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'open_tree', 'move_mount',
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'pidfd_open', 'clone3', 'close_range', 'openat2', 'pidfd_getfd',
  'faccessat2', 'process_madvise', 'epoll_pwait2', 'mount_setattr', 'quotactl_fd', 'landlock_create_ruleset',
  'landlock_add_rule', 'landlock_restrict_self', 'memfd_secret', 'process_mrelease', 'futex_waitv',
  'set_mempolicy_home_node',
];
const ENOSYS = 38;

/**
 * The OCI linux.seccomp section. Denial without errno kills the whole
 * process with SIGSYS (SCMP_ACT_KILL_PROCESS, as systemd's filter). With an
 * allow-list, the syscalls newer than the list that it does not allow
 * answer ENOSYS (see NEWER_SYSCALLS).
 */
export function ociSeccomp(p: SeccompPolicy, arch: string = process.arch): Record<string, unknown> {
  const deny = p.errno !== undefined ? { action: 'SCMP_ACT_ERRNO', errnoRet: ERRNOS[p.errno] as number } : { action: 'SCMP_ACT_KILL_PROCESS' };
  const architectures = OCI_ARCHES[arch] ?? [];
  const allowed = new Set(p.syscalls);
  const newer = NEWER_SYSCALLS.filter((n) => !allowed.has(n));
  if (p.kind === 'allow') {
    return {
      defaultAction: deny.action,
      ...(deny.errnoRet !== undefined ? { defaultErrnoRet: deny.errnoRet } : {}),
      architectures,
      syscalls: [
        { names: p.syscalls, action: 'SCMP_ACT_ALLOW' },
        ...(newer.length > 0 && deny.errnoRet === undefined ? [{ names: newer, action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS }] : []),
      ],
    };
  }
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures,
    syscalls: [{ names: p.syscalls, ...deny }],
  };
}
