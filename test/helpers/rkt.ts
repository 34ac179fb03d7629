// Runs the real `bin/rkt` as a separate process, the way a user types it,
// against throwaway --dir / --local-config / --system-config / --user-config
// directories.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordPods, track } from './leaks.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RKT_BIN = join(REPO_ROOT, 'bin', 'rkt');
/** rkt's exit code for any failure. */
export const RKT_FAILURE = 254;

export interface RktEnv {
  /** The temp dir holding everything below. */
  base: string;
  dir: string;
  localConfig: string;
  systemConfig: string;
  userConfig: string;
  /** A scratch dir for the test's own files (images, outputs). */
  work: string;
  /** The global flags pointing rkt at this env. */
  globalArgs: string[];
  cleanup(): void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The command line, for assertion messages. */
  cmd: string;
  /** rkt exited but a process it started kept its stdout/stderr open. */
  pipesHeld?: boolean;
}

export interface RunOptions {
  input?: string | Buffer;
  /** Extra environment variables (merged over the test's environment). */
  env?: Record<string, string | undefined>;
  /** Milliseconds before the process is killed (default 120 s). */
  timeout?: number;
  /** Skip the env's global flags (to test defaults or flag parsing). */
  noGlobalArgs?: boolean;
  cwd?: string;
}

/** Creates fresh, empty rkt directories under one temp dir. */
export function makeEnv(prefix = 'rkt-test-'): RktEnv {
  const base = mkdtempSync(join(tmpdir(), prefix));
  track(base);
  const dir = join(base, 'data');
  const localConfig = join(base, 'local');
  const systemConfig = join(base, 'system');
  const userConfig = join(base, 'user');
  const work = join(base, 'work');
  for (const d of [dir, localConfig, systemConfig, userConfig, work]) mkdirSync(d, { recursive: true });
  return {
    base,
    dir,
    localConfig,
    systemConfig,
    userConfig,
    work,
    globalArgs: [`--dir=${dir}`, `--local-config=${localConfig}`, `--system-config=${systemConfig}`, `--user-config=${userConfig}`],
    cleanup: () => removeTree(base),
  };
}

/**
 * Removes a temp tree. Anything still mounted below it is lazily unmounted
 * first, so that a leaked bind mount never makes us delete host files.
 */
export function removeTree(path: string): void {
  recordPods(path);
  const mounts = mountPointsUnder(path).sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  if (mountPointsUnder(path).length > 0) {
    throw new Error(`refusing to remove ${path}: still has mounts below it`);
  }
  rmSync(path, { recursive: true, force: true, maxRetries: 3 });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function mountPointsUnder(path: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const p = path.endsWith('/') ? path : `${path}/`;
  return text
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => m !== undefined && m !== '')
    .map(unescapeMount)
    .filter((m) => m === path || m.startsWith(p));
}

function buildEnv(extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The test runner's own settings must not leak into the CLI.
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `bin/rkt [global flags] ARGS` and collects its output. Never throws for
 * a non-zero exit. Bounded in time: after `timeout` the process is killed;
 * and if rkt has exited but something it started still holds its stdout or
 * stderr open (a daemonized child), the result is returned 5 s after the exit
 * with `pipesHeld: true` instead of waiting forever.
 */
export function rkt(env: RktEnv | null, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = [...(env && !opts.noGlobalArgs ? env.globalArgs : []), ...args];
  const cmd = ['rkt', ...argv].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(RKT_BIN, argv, {
      env: buildEnv(opts.env),
      cwd: opts.cwd ?? env?.work ?? REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let grace: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null, pipesHeld: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (env) recordPods(env.dir);
      if (pipesHeld) {
        child.stdout.destroy();
        child.stderr.destroy();
      }
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        cmd,
        ...(pipesHeld ? { pipesHeld } : {}),
      });
    };
    const armGrace = (): void => {
      clearTimeout(grace);
      grace = setTimeout(() => finish(exitCode, exitSignal, true), 5_000);
    };
    const timer = setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null) return; // exited; the grace timer runs
      timedOut = true;
      child.kill('SIGKILL');
      armGrace();
    }, opts.timeout ?? 120_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      armGrace();
    });
    child.on('close', (code, signal) => finish(code, signal, false));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Synchronous variant, for hooks and scripts. */
export function rktSync(env: RktEnv | null, args: string[], opts: RunOptions = {}): RunResult {
  const argv = [...(env && !opts.noGlobalArgs ? env.globalArgs : []), ...args];
  const r = spawnSync(RKT_BIN, argv, {
    env: buildEnv(opts.env),
    cwd: opts.cwd ?? env?.work ?? REPO_ROOT,
    input: opts.input ?? '',
    timeout: opts.timeout ?? 120_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (env) recordPods(env.dir);
  return {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout?.toString('utf8') ?? '',
    stderr: r.stderr?.toString('utf8') ?? '',
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
    cmd: ['rkt', ...argv].map(quote).join(' '),
  };
}

/** A readable description of a result, for assertion messages. */
export function describeRun(r: RunResult): string {
  const t = `${r.timedOut ? ' (timed out)' : ''}${r.pipesHeld ? ' (exited, but its stdout/stderr stayed open)' : ''}`;
  return `\n$ ${r.cmd}\nexit: ${r.code}${r.signal ? ` signal: ${r.signal}` : ''}${t}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

/** Throws (with the whole output) unless the command exited 0. */
export function assertOk(r: RunResult, what = ''): RunResult {
  if (r.code !== 0) throw new Error(`${what ? `${what}: ` : ''}expected exit 0${describeRun(r)}`);
  return r;
}

/**
 * Asserts rkt's failure shape: exit 254, one error line on stderr starting
 * with `rkt: ` (optionally followed by one `hint: ` line), nothing on stdout.
 * `multi: true` is for commands taking several operands (`image rm`, `image
 * verify`), which report each failure and then a count, as rkt does: every
 * stderr line must then start with `rkt: ` (or `hint: `).
 */
export function assertRktError(r: RunResult, opts: RegExp | { match?: RegExp; multi?: boolean } = {}): void {
  const { match, multi } = opts instanceof RegExp ? { match: opts, multi: false } : opts;
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const errLines = lines.filter((l) => l.startsWith('rkt: '));
  const other = lines.filter((l) => !l.startsWith('rkt: ') && !l.startsWith('hint: '));
  const problems: string[] = [];
  if (r.code !== RKT_FAILURE) problems.push(`exit code ${r.code}, want ${RKT_FAILURE}`);
  if (multi ? errLines.length === 0 : errLines.length !== 1) problems.push(`${errLines.length} lines starting with "rkt: " on stderr, want ${multi ? 'at least ' : ''}1`);
  if (other.length > 0) problems.push(`unexpected stderr lines: ${JSON.stringify(other)}`);
  if (lines[0] !== undefined && !lines[0].startsWith('rkt: ')) problems.push('first stderr line does not start with "rkt: "');
  if (!multi && r.stdout.trim() !== '') problems.push('stdout is not empty');
  if (match && !match.test(r.stderr)) problems.push(`stderr does not match ${match}`);
  if (problems.length > 0) throw new Error(`${problems.join('; ')}${describeRun(r)}`);
}

/** Lists every non-directory entry under `path` (relative paths); [] if it does not exist. */
export function filesUnder(path: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const abs = join(dir, n);
      const r = rel ? `${rel}/${n}` : n;
      let st;
      try {
        st = lstatSync(abs);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(abs, r);
      else out.push(r);
    }
  };
  walk(path, '');
  return out.sort();
}

/** Lists every entry (files and directories) directly inside `path`; [] if missing. */
export function entriesIn(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch {
    return [];
  }
}

/** The UUID a background `rkt run --uuid-file-save=FILE` wrote, waiting up to 10 s; '' if none came. */
export async function savedUuid(file: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const uuid = readFileSync(file, 'utf8').trim();
      if (uuid) return uuid;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return '';
}
