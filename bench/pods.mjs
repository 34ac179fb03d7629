#!/usr/bin/env node
// Pod benchmarks (issue 3), measured in one run, interleaved so that drift on
// this noisy machine hits every command alike:
//   - `rkt run --net=none IMG --exec /bin/true` vs a raw `runc run` of a
//     prepared bundle of the same rootfs, vs `podman run --rm --net=none`,
//     with bare `node -e 0` for the budget (added ≤ node + 20 ms; ≤ 0.5× podman)
//   - `rkt list` with 100 pods vs `node -e 0` (≤ +40 ms)
//   - host-side memory of a running pod (monitor + pod init), ≤ 20 MB
// Usage: node bench/pods.mjs   (RUNS=20 PODS=100 SKIP_PODMAN=1 SCRATCH=…)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RKT = join(ROOT, 'bin', 'rkt');
const NODE = process.execPath;
const SCRATCH = process.env.SCRATCH || '/var/tmp/rkt-bench/pods';
const RUNS = Number(process.env.RUNS || 20);
const PODS = Number(process.env.PODS || 100);
const IMG = 'example.com/bench/busybox';
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;

const log = (m) => process.stderr.write(`[bench] ${m}\n`);
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'], ...opts });
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function time(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: 'ignore' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return ms;
}

// --- fixtures -----------------------------------------------------------------
const dir = join(SCRATCH, 'rkt');
const rootfs = join(SCRATCH, 'rootfs');
const bundle = join(SCRATCH, 'bundle');
rmSync(SCRATCH, { recursive: true, force: true });
// podman and skopeo as root keep a blob-info cache in /var/lib/containers/cache: removed at the end if this run made it.
const hadContainers = existsSync('/var/lib/containers');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
sh('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
for (const a of sh('/bin/busybox', ['--list-full']).toString().split('\n').filter((l) => l && l !== 'bin/busybox' && l !== 'linuxrc')) {
  mkdirSync(dirname(join(rootfs, a)), { recursive: true });
  try { sh('ln', ['-s', '/bin/busybox', join(rootfs, a)]); } catch { /* dup */ }
}
mkdirSync(join(rootfs, 'etc'), { recursive: true });
writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\n');
const aciDir = join(SCRATCH, 'aci');
mkdirSync(aciDir);
sh('cp', ['-a', rootfs, join(aciDir, 'rootfs')]);
writeFileSync(join(aciDir, 'manifest'), JSON.stringify({
  acKind: 'ImageManifest', acVersion: '0.8.11', name: IMG,
  labels: [{ name: 'version', value: '1' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }],
  app: { exec: ['/bin/true'], user: '0', group: '0' },
}));
sh('tar', ['-C', aciDir, '--numeric-owner', '-cf', join(SCRATCH, 'busybox.aci'), 'manifest', 'rootfs']);
sh(RKT, [`--dir=${dir}`, '--insecure-options=image', 'fetch', join(SCRATCH, 'busybox.aci')]);
mkdirSync(bundle);
sh('cp', ['-a', rootfs, join(bundle, 'rootfs')]);
sh('runc', ['spec'], { cwd: bundle });
const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
spec.process.args = ['/bin/true'];
spec.process.terminal = false;
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));

let podman = !process.env.SKIP_PODMAN && spawnSync('podman', ['--version']).status === 0;
const pconf = join(SCRATCH, 'podman');
if (podman) {
  mkdirSync(pconf, { recursive: true });
  const nofile = sh('bash', ['-c', 'ulimit -Hn']).toString().trim();
  let nproc = sh('bash', ['-c', 'ulimit -Hu']).toString().trim();
  const pidmax = readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim();
  if (nproc === 'unlimited' || Number(nproc) > Number(pidmax)) nproc = pidmax;
  // podman without systemd, as ../shared/peers sets it up: cgroupfs, file events, runc, rlimits within ours.
  writeFileSync(join(pconf, 'containers.conf'), `[containers]\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${pconf}/events.log"\ntmp_dir = "${pconf}/tmp"\n`);
  writeFileSync(join(pconf, 'storage.conf'), `[storage]\ndriver = "overlay"\nrunroot = "${pconf}/run"\ngraphroot = "${pconf}/storage"\n`);
  env.CONTAINERS_CONF = join(pconf, 'containers.conf');
  env.CONTAINERS_STORAGE_CONF = join(pconf, 'storage.conf');
  sh('tar', ['-C', rootfs, '-cf', join(SCRATCH, 'rootfs.tar'), '.']);
  try {
    sh('podman', ['import', join(SCRATCH, 'rootfs.tar'), 'localhost/bench/busybox:1']);
  } catch (e) {
    log(`podman import failed, skipping podman: ${e.message}`);
    podman = false;
  }
} else log('podman not installed (apt-get install podman) or SKIP_PODMAN set: skipping podman');

// --- start latency ---------------------------------------------------------------
const cmds = {
  node: [NODE, ['-e', '0']],
  runc: ['runc', ['run', '--bundle', bundle, 'rkt-bench-runc']],
  rkt: [RKT, [`--dir=${dir}`, 'run', '--net=none', IMG, '--exec', '/bin/true']],
  ...(podman ? { podman: ['podman', ['run', '--rm', '--net=none', 'localhost/bench/busybox:1', 'true']] } : {}),
};
const times = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
for (const [k, [c, a]] of Object.entries(cmds)) time(c, a); // warm-up
log(`start latency: ${RUNS} interleaved rounds`);
for (let i = 0; i < RUNS; i++) for (const [k, [c, a]] of Object.entries(cmds)) times[k].push(time(c, a));
spawnSync(RKT, [`--dir=${dir}`, 'gc', '--grace-period=0s'], { env, stdio: 'ignore' });

// --- rkt list with many pods -----------------------------------------------------
log(`creating ${PODS} exited pods`);
for (let i = 0; i < PODS; i++) spawnSync(RKT, [`--dir=${dir}`, 'run', '--net=none', IMG, '--exec', '/bin/true'], { env, stdio: 'ignore' });
const list = { node: [], list: [] };
for (let i = 0; i < RUNS; i++) {
  list.node.push(time(NODE, ['-e', '0']));
  list.list.push(time(RKT, [`--dir=${dir}`, 'list']));
}
const podCount = readdirSync(join(dir, 'pods', 'run')).length;

// --- memory of a running pod -------------------------------------------------------
function procMem(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  let pss = rss;
  try { pss = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? rss); } catch { /* old kernel */ }
  return { rss, pss, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() };
}
function children(pid) {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}
const uuidFile = join(SCRATCH, 'uuid');
const child = spawn(RKT, [`--dir=${dir}`, 'run', '--net=none', `--uuid-file-save=${uuidFile}`, IMG, '--exec', '/bin/sleep', '--', '30'], { env, stdio: 'ignore' });
spawnSync(RKT, [`--dir=${dir}`, 'status', '--wait-ready=20s', '--uuid-file', uuidFile].filter(Boolean), { env, stdio: 'ignore' });
for (let i = 0; i < 50 && !existsSync(uuidFile); i++) spawnSync('sleep', ['0.1']);
spawnSync(RKT, [`--dir=${dir}`, 'status', '--wait-ready=20s', readFileSync(uuidFile, 'utf8').trim()], { env, stdio: 'ignore' });
// Host side of the pod: the monitor (same PID as `rkt run`) and everything below it but the payload.
const host = [];
const walk = (pid) => {
  const m = procMem(pid);
  if (m.comm !== 'sleep') host.push({ pid, ...m });
  for (const c of children(pid)) walk(c);
};
walk(child.pid);
child.kill('SIGTERM');
await new Promise((r) => child.on('close', r));
const memRss = host.reduce((s, p) => s + p.rss, 0);
const memPss = host.reduce((s, p) => s + p.pss, 0);

// --- cleanup and report -----------------------------------------------------------
spawnSync(RKT, [`--dir=${dir}`, 'gc', '--grace-period=0s'], { env, stdio: 'ignore' });
if (podman) spawnSync('podman', ['rmi', '-a', '-f'], { env, stdio: 'ignore' });
spawnSync('runc', ['delete', '-f', 'rkt-bench-runc'], { stdio: 'ignore' });
rmSync(SCRATCH, { recursive: true, force: true });
if (!hadContainers) rmSync('/var/lib/containers', { recursive: true, force: true });

const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
const added = m.rkt - m.runc;
const f = (x) => x.toFixed(1);
const rows = [
  ['`node -e 0`', f(m.node), ''],
  ['raw `runc run` (prepared bundle, /bin/true)', f(m.runc), ''],
  ['`rkt run --net=none` /bin/true', f(m.rkt), `adds ${f(added)} ms over runc; budget node+20 = ${f(m.node + 20)} ms → ${added <= m.node + 20 ? 'met' : 'NOT met'}`],
  ...(podman ? [['`podman run --rm --net=none` true', f(m.podman), `rkt/podman = ${(m.rkt / m.podman).toFixed(2)} (target ≤ 0.5) → ${m.rkt / m.podman <= 0.5 ? 'met' : 'NOT met'}`]] : []),
  [`\`node -e 0\` (list round)`, f(median(list.node)), ''],
  [`\`rkt list\` with ${podCount} pods`, f(median(list.list)), `+${f(median(list.list) - median(list.node))} ms over node (target ≤ 40) → ${median(list.list) - median(list.node) <= 40 ? 'met' : 'NOT met'}`],
  ['host-side memory of a running pod (RSS)', `${(memRss / 1024).toFixed(1)} MiB`, host.map((p) => `${p.comm} ${(p.rss / 1024).toFixed(1)}`).join(', ')],
  ['host-side memory of a running pod (PSS)', `${(memPss / 1024).toFixed(1)} MiB`, `target ≤ 20 MB → ${memRss / 1024 <= 20 ? 'met' : 'NOT met'}`],
];
const out = `| measurement (median of ${RUNS}, interleaved) | ms | note |\n|---|---:|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`;
process.stdout.write(out);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'pods.md'), `# Pod benchmarks (${new Date().toISOString()})\n\n${out}`);
