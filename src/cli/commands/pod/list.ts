// `rkt list` (rkt/list.go) and the JSON pod format shared with `rkt status`
// (api/v1/json.go): pod times in seconds, app times in nanoseconds.
import { displayName } from '../../../image/aci/labels.ts';
import { listId } from '../../../image/aci/id.ts';
import { dataDir } from '../../../config/files.ts';
import { usage } from '../../../lib/errors.ts';
import { appStatus, createdNs, listPods, podState, readManifest, startedNs, type Pod, type PodState } from '../../../pod/pods.ts';
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
    const sorted = pods.map((p) => ({ p, created: createdNs(p) ?? 0n })).sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
    for (const { p, created } of sorted) {
      const m = readManifest(p);
      const state = podState(p);
      const apps = m?.apps ?? [];
      const uuid = full ? p.uuid : p.uuid.slice(0, 8);
      // Each file is read once per pod: with 100 pods, every extra read costs ~8 ms.
      const podCols = [state, when(created === 0n ? undefined : created), when(startedNs(p)), formatNetworks(readNetInfo(p.dir))];
      if (apps.length === 0) rows.push(full ? [uuid, '', '', '', ...podCols] : [uuid, '', '', ...podCols]);
      apps.forEach((a, i) => {
        const img = displayName({ name: a.image.name, labels: a.image.labels });
        const first = i === 0;
        const cols = first ? podCols : ['', '', '', ''];
        rows.push(full ? [first ? uuid : '', a.name, img, listId(a.image.id), ...cols] : [first ? uuid : '', a.name, img, ...cols]);
      });
    }
    if (rows.length > 0) ctx.stdout.write(tabwrite(rows));
    return 0;
  },
};
