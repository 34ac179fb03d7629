// `rkt list` (rkt/list.go) and the JSON pod format shared with `rkt status`
// (api/v1/json.go): pod times in seconds, app times in nanoseconds.
import { displayName } from '../../../image/aci/labels.ts';
import { listId } from '../../../image/aci/id.ts';
import { dataDir } from '../../../config/files.ts';
import { usage } from '../../../lib/errors.ts';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { appStatus, createdNs, listPods, podState, readManifest, readTextIfExists, startedNs, type Pod, type PodState } from '../../../pod/pods.ts';
import type { Command } from '../../command.ts';
import { fullTime, humanTime, jsonWithNanos, tabwrite } from '../../output.ts';
import { formatNetworks, readNetInfo } from '../../../net/setup.ts';

function appState(state: PodState, exit: number | undefined, started: bigint | undefined): string {
  if (exit !== undefined) return 'exited';
  if (state === 'running') return started !== undefined ? 'running' : 'created';
  if (state === 'prepared' || state === 'preparing' || state === 'embryo') return 'created';
  return 'unknown';
}

export function podJson(pod: Pod): Record<string, unknown> {
  const state = podState(pod);
  const m = readManifest(pod);
  const created = createdNs(pod);
  const started = startedNs(pod);
  const apps = (m?.apps ?? []).map((a) => {
    const st = appStatus(pod, a.name);
    return {
      name: a.name,
      state: appState(state, st.exitCode, st.startedAt),
      ...(created !== undefined ? { created_at: created } : {}),
      ...(st.startedAt !== undefined ? { started_at: st.startedAt } : {}),
      ...(st.finishedAt !== undefined ? { finished_at: st.finishedAt } : {}),
      ...(st.exitCode !== undefined ? { exit_code: st.exitCode } : {}),
      image_id: a.image.id,
      mounts: a.mounts.map((mt) => {
        const vol = m?.volumes.find((v) => v.name === mt.volume);
        return { name: mt.volume, container_path: mt.path, host_path: vol?.source ?? '', read_only: vol?.readOnly ?? false };
      }),
      ...(a.app.userAnnotations ? { user_annotations: a.app.userAnnotations } : {}),
      ...(a.app.userLabels ? { user_labels: a.app.userLabels } : {}),
    };
  });
  return {
    name: pod.uuid,
    state,
    // rkt's api/v1 network fields, from net-info.json.
    networks: readNetInfo(pod.dir).map((n) => ({ netName: n.netName, netConf: n.netConf, pluginPath: n.pluginPath, ifName: n.ifName, ip: n.ip, args: n.args, mask: n.mask })),
    app_names: apps.map((a) => a.name),
    apps,
    ...(created !== undefined ? { created_at: Number(created / 1_000_000_000n) } : {}),
    ...(started !== undefined ? { started_at: Number(started / 1_000_000_000n) } : {}),
  };
}

/** What a row of `rkt list` shows of a pod. */
interface Summary {
  uuid: string;
  state: PodState;
  created: bigint;
  started: bigint | undefined;
  networks: string;
  apps: { name: string; image: string; id: string }[];
}

/*
 * An exited pod in run/ never changes again (its owner is dead for good:
 * PID plus start time), so the first `rkt list` that sees it exited keeps
 * its row in POD/list-row.json; later lists read that one file instead of
 * five (manifest, owner, times, networks), which with 100 pods is most of
 * the command's time. Best effort: a pod dir we cannot write is just read.
 */
const ROW_CACHE = 'list-row.json';

function summarize(p: Pod): Summary {
  if (p.place === 'run') {
    const cached = readTextIfExists(`${p.dir}/${ROW_CACHE}`);
    if (cached !== undefined) {
      try {
        const c = JSON.parse(cached) as { created: string; started?: string; networks: string; apps: Summary['apps'] };
        return { uuid: p.uuid, state: 'exited', created: BigInt(c.created), started: c.started === undefined ? undefined : BigInt(c.started), networks: c.networks, apps: c.apps };
      } catch {
        /* rebuilt below */
      }
    }
  }
  const m = readManifest(p);
  const state = podState(p);
  const x: Summary = {
    uuid: p.uuid,
    state,
    created: createdNs(p) ?? 0n,
    started: startedNs(p),
    networks: formatNetworks(readNetInfo(p.dir)),
    apps: (m?.apps ?? []).map((a) => ({ name: a.name, image: displayName({ name: a.image.name, labels: a.image.labels }), id: a.image.id })),
  };
  if (state === 'exited' && p.place === 'run' && m) {
    const tmp = `${p.dir}/.${ROW_CACHE}.${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify({ created: String(x.created), ...(x.started !== undefined ? { started: String(x.started) } : {}), networks: x.networks, apps: x.apps }));
      renameSync(tmp, `${p.dir}/${ROW_CACHE}`);
    } catch {
      rmSync(tmp, { force: true });
    }
  }
  return x;
}

export const command: Command = {
  name: 'list',
  usage: 'list',
  summary: 'List pods',
  flags: [
    { name: 'full', type: 'bool', default: false, help: 'use long output format' },
    { name: 'no-legend', type: 'bool', default: false, help: 'suppress a legend with the list' },
    { name: 'format', type: 'string', default: '', help: 'choose the output format, allowed format includes "json", "json-pretty". If empty, human-readable format is used' },
  ],
  async run(ctx, parsed) {
    const v = parsed.values;
    const format = v.format as string;
    if (!['', 'json', 'json-pretty'].includes(format)) throw usage(`invalid --format "${format}": accepted json, json-pretty`);
    const pods = listPods(dataDir(ctx.global));
    if (format !== '') {
      ctx.stdout.write(`${jsonWithNanos(pods.map(podJson), format === 'json-pretty')}\n`);
      return 0;
    }
    const full = v.full as boolean;
    const rows: string[][] = [];
    if (!v['no-legend']) rows.push(full ? ['UUID', 'APP', 'IMAGE NAME', 'IMAGE ID', 'STATE', 'CREATED', 'STARTED', 'NETWORKS'] : ['UUID', 'APP', 'IMAGE NAME', 'STATE', 'CREATED', 'STARTED', 'NETWORKS']);
    const when = (ns: bigint | undefined) => (ns === undefined ? '' : full ? fullTime(Number(ns / 1_000_000n)) : humanTime(Number(ns / 1_000_000n)));
    const summaries = pods.map(summarize).sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
    for (const x of summaries) {
      const uuid = full ? x.uuid : x.uuid.slice(0, 8);
      const podCols = [x.state, when(x.created === 0n ? undefined : x.created), when(x.started), x.networks];
      if (x.apps.length === 0) rows.push(full ? [uuid, '', '', '', ...podCols] : [uuid, '', '', ...podCols]);
      x.apps.forEach((a, i) => {
        const first = i === 0;
        const cols = first ? podCols : ['', '', '', ''];
        rows.push(full ? [first ? uuid : '', a.name, a.image, listId(a.id), ...cols] : [first ? uuid : '', a.name, a.image, ...cols]);
      });
    }
    if (rows.length > 0) ctx.stdout.write(tabwrite(rows));
    return 0;
  },
};
