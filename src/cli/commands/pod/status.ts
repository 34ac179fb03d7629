// `rkt status UUID` (rkt/status.go): key=value lines, --wait, --wait-ready.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, usage } from '../../../lib/errors.ts';
import { parseDuration } from '../../../lib/duration.ts';
import { appStatus, createdNs, podPid, podState, readManifest, refresh, startedNs, type Pod } from '../../../pod/pods.ts';
import type { Command } from '../../command.ts';
import { fullTime, jsonWithNanos } from '../../output.ts';
import { podArgs, lookupPod, sleep } from './common.ts';
import { podJson } from './list.ts';
import { formatNetworks, readNetInfo } from '../../../net/setup.ts';

/** `--wait[=true|false|DURATION]`: undefined = no wait, Infinity = forever, else ms. */
export function waitArg(v: string): number | undefined {
  if (v === '' || v === 'false') return undefined;
  if (v === 'true') return Infinity;
  return parseDuration(v, '--wait');
}

async function waitFor(pod: Pod, timeout: number, done: (p: Pod) => boolean, what: string): Promise<Pod> {
  const deadline = Date.now() + timeout;
  let p: Pod | undefined = pod;
  for (;;) {
    p = refresh(p);
    if (!p) throw new RktError('NOT_FOUND', `pod ${pod.uuid} disappeared`);
    if (done(p)) return p;
    if (Date.now() >= deadline) throw new RktError('STATE', `timed out waiting for pod ${pod.uuid} to ${what}`);
    await sleep(100);
  }
}

const finished = (p: Pod) => !['embryo', 'preparing', 'prepared', 'running'].includes(podState(p));
const ready = (p: Pod) => finished(p) || (podState(p) === 'running' && existsSync(join(p.dir, 'supervisor-status')) && readFileSync(join(p.dir, 'supervisor-status'), 'utf8').trim() === 'ready');

export const command: Command = {
  name: 'status',
  usage: 'status [--wait=bool|timeout] [--wait-ready=bool|timeout] UUID',
  summary: 'Check the status of a rkt pod',
  flags: [
    { name: 'wait', type: 'string', default: 'false', bare: 'true', help: 'toggles waiting for the pod to finish. Use the output to determine the actual terminal state' },
    { name: 'wait-ready', type: 'string', default: 'false', bare: 'true', help: 'toggles waiting until the pod is ready' },
    { name: 'format', type: 'string', default: '', help: 'choose the output format, allowed format includes "json", "json-pretty". If empty, human-readable format is used' },
    { name: 'uuid-file', type: 'string', default: '', help: 'read pod UUID from file instead of argument' },
  ],
  async run(ctx, parsed) {
    const v = parsed.values;
    const [uuid] = podArgs(parsed.positionals, (v['uuid-file'] as string) || undefined, 1);
    const format = v.format as string;
    if (!['', 'json', 'json-pretty'].includes(format)) throw usage(`invalid --format "${format}"`);
    let pod = lookupPod(ctx.global, uuid as string);
    const wr = waitArg(v['wait-ready'] as string);
    if (wr !== undefined) pod = await waitFor(pod, wr, ready, 'become ready');
    const w = waitArg(v.wait as string);
    if (w !== undefined) pod = await waitFor(pod, w, finished, 'finish');
    if (format !== '') {
      ctx.stdout.write(`${jsonWithNanos(podJson(pod), format === 'json-pretty')}\n`);
      return 0;
    }
    const state = podState(pod);
    const lines = [`state=${state}`];
    const created = createdNs(pod);
    if (created !== undefined) lines.push(`created=${fullTime(Number(created / 1_000_000n))}`);
    const started = startedNs(pod);
    if (started !== undefined) lines.push(`started=${fullTime(Number(started / 1_000_000n))}`);
    if (state === 'running' || state.startsWith('exited') || state === 'deleting') lines.push(`networks=${formatNetworks(readNetInfo(pod.dir))}`);
    const pid = podPid(pod);
    if (pid !== undefined && (state === 'running' || state === 'deleting' || state.startsWith('exited'))) lines.push(`pid=${pid}`);
    lines.push(`exited=${state !== 'running' && state !== 'preparing' && state !== 'prepared' && state !== 'embryo'}`);
    if (state !== 'running') {
      for (const app of readManifest(pod)?.apps ?? []) {
        const st = appStatus(pod, app.name);
        if (st.exitCode !== undefined) lines.push(`app-${app.name}=${st.exitCode}`);
        // Written by the monitor when the app's memory cgroup saw OOM kills.
        if (existsSync(join(pod.dir, 'apps', app.name, 'oom'))) lines.push(`app-${app.name}-reason=oom-killed`);
      }
    }
    ctx.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
