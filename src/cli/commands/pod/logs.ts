// `rkt logs UUID [--app NAME] [--follow] [--tail N]`: the apps' output as
// kept by the pod monitor (CRI log format), also after the pod exited.
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, usage } from '../../../lib/errors.ts';
import { podState, refresh, type Pod } from '../../../pod/pods.ts';
import type { Command, CommandContext } from '../../command.ts';
import { lookupPod, sleep } from './common.ts';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: string;
}

/** Parses one CRI log line: `<time> <stream> <F|P> <text>`. Pure. */
export function parseLogLine(line: string): LogRecord | undefined {
  const m = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/s.exec(line);
  if (!m) return undefined;
  return { time: m[1] as string, stream: m[2] as 'stdout' | 'stderr', partial: m[3] === 'P', text: m[4] as string };
}

function emit(ctx: CommandContext, r: LogRecord, prefix: string): void {
  const s = r.stream === 'stdout' ? ctx.stdout : ctx.stderr;
  s.write(prefix + r.text + (r.partial ? '' : '\n'));
}

class Reader {
  private pos = 0;
  private rest = '';
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  /** New complete lines since the last call. */
  lines(): string[] {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return [];
    }
    if (size <= this.pos) return [];
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(size - this.pos);
      const n = readSync(fd, buf, 0, buf.length, this.pos);
      this.pos += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const parts = text.split('\n');
      this.rest = parts.pop() ?? '';
      return parts;
    } finally {
      closeSync(fd);
    }
  }
}

export const command: Command = {
  name: 'logs',
  usage: 'logs [--app=NAME] [--follow] [--tail=N] UUID',
  summary: 'Print the logs of a pod\'s apps',
  flags: [
    { name: 'app', type: 'string', default: '', help: 'only this app\'s output' },
    { name: 'follow', short: 'f', type: 'bool', default: false, help: 'keep printing new output until the pod exits' },
    { name: 'tail', type: 'int', default: -1, help: 'print only the last N lines of each app (-1: all)' },
    { name: 'timestamps', type: 'bool', default: false, help: 'prefix each line with its time' },
  ],
  async run(ctx, parsed) {
    if (parsed.positionals.length !== 1) throw usage('logs: exactly one pod UUID is required');
    let pod: Pod | undefined = lookupPod(ctx.global, parsed.positionals[0] as string);
    const v = parsed.values;
    let apps: string[];
    try {
      apps = readdirSync(join(pod.dir, 'apps'));
    } catch {
      apps = [];
    }
    if (v.app) {
      if (!apps.includes(v.app as string)) throw new RktError('NOT_FOUND', `app "${v.app}" not found in pod ${pod.uuid}`);
      apps = [v.app as string];
    }
    const readers = apps.map((a) => ({ app: a, r: new Reader(join(pod!.dir, 'logs', `${a}.log`)) }));
    const prefix = (a: string, r: LogRecord) => `${v.timestamps ? `${r.time} ` : ''}${apps.length > 1 ? `[${a}] ` : ''}`;
    const tail = v.tail as number;
    for (const { app, r } of readers) {
      let recs = r.lines().map(parseLogLine).filter((x): x is LogRecord => x !== undefined);
      if (tail >= 0) recs = recs.slice(Math.max(0, recs.length - tail));
      for (const rec of recs) emit(ctx, rec, prefix(app, rec));
    }
    if (!v.follow) return 0;
    for (;;) {
      pod = pod && refresh(pod);
      const running = pod !== undefined && ['running', 'preparing', 'embryo'].includes(podState(pod));
      for (const { app, r } of readers) for (const l of r.lines()) {
        const rec = parseLogLine(l);
        if (rec) emit(ctx, rec, prefix(app, rec));
      }
      if (!running) return 0;
      await sleep(200);
    }
  },
};
