// `rkt stop UUID…`: SIGTERM to the pod's monitor (which stops its apps, then
// kills them after its stop timeout); --force kills the apps at once.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RktError, errMessage } from '../../../lib/errors.ts';
import { owner, podState, refresh, type Pod } from '../../../pod/pods.ts';
import type { Command } from '../../command.ts';
import { lookupPod, podArgs, sleep } from './common.ts';

function appPids(pod: Pod): number[] {
  const pids: number[] = [];
  const dirs = [...(() => {
    try {
      return readdirSync(join(pod.dir, 'apps')).map((a) => join(pod.dir, 'apps', a, 'pid'));
    } catch {
      return [];
    }
  })(), join(pod.dir, 'pause', 'pid')];
  for (const f of dirs) {
    try {
      const n = Number(readFileSync(f, 'utf8').trim());
      if (Number.isInteger(n) && n > 0) pids.push(n);
    } catch {
      /* not started */
    }
  }
  return pids;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

async function waitStopped(pod: Pod, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const p = refresh(pod);
    if (!p || podState(p) !== 'running') return true;
    await sleep(50);
  }
  return false;
}

export const command: Command = {
  name: 'stop',
  usage: 'stop --uuid-file=FILE | UUID ...',
  summary: 'Stop a pod',
  flags: [
    { name: 'force', type: 'bool', default: false, help: 'forced stopping' },
    { name: 'uuid-file', type: 'string', default: '', help: 'read pod UUID from file instead of argument' },
  ],
  async run(ctx, parsed) {
    const uuids = podArgs(parsed.positionals, (parsed.values['uuid-file'] as string) || undefined);
    const force = parsed.values.force as boolean;
    let failed = 0;
    for (const u of uuids) {
      try {
        const pod = lookupPod(ctx.global, u);
        const state = podState(pod);
        if (state === 'exited' || state === 'exited garbage' || state === 'garbage' || state === 'deleting') {
          ctx.stderr.write(`pod "${pod.uuid}" is already stopped\n`);
          continue;
        }
        if (state !== 'running') throw new RktError('STATE', `pod "${pod.uuid}" is not running (${state})`);
        const mon = owner(pod);
        if (force) {
          // Only the monitor's own children: a PID file may name a process that is gone and reused.
          for (const pid of appPids(pod).filter((p) => mon && parentOf(p) === mon.pid)) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
        } else if (mon) {
          process.kill(mon.pid, 'SIGTERM');
        }
        if (!(await waitStopped(pod, force ? 5_000 : 30_000))) throw new RktError('STATE', `pod "${pod.uuid}" did not stop in time (try --force)`);
        ctx.stdout.write(`"${pod.uuid}"\n`);
      } catch (e) {
        failed++;
        ctx.stderr.write(`rkt: stop: ${errMessage(e)}\n`);
      }
    }
    if (failed > 0) throw new RktError('STATE', `${failed} pod(s) could not be stopped`);
    return 0;
  },
};
