// `rkt image list` (rkt/image_list.go): columns, sorting, JSON formats.
import { usage } from '../../../lib/errors.ts';
import { displayName } from '../../../image/aci/labels.ts';
import { listId } from '../../../image/aci/id.ts';
import type { ImageRow } from '../../../image/store/store.ts';
import type { Command } from '../../command.ts';
import { fullTime, humanSize, humanTime, jsonWithNanos, msToNs, tabwrite } from '../../output.ts';
import { openStore } from './common.ts';

const FIELDS = {
  id: { header: 'ID', value: (r: ImageRow, full: boolean) => (full ? r.key : listId(r.key)) },
  name: { header: 'NAME', value: (r: ImageRow) => shownName(r) },
  size: { header: 'SIZE', value: (r: ImageRow, full: boolean) => (full ? String(r.size + r.treeSize) : humanSize(r.size + r.treeSize)) },
  importtime: { header: 'IMPORT TIME', value: (r: ImageRow, full: boolean) => (full ? fullTime(r.importTime) : humanTime(r.importTime)) },
  lastused: { header: 'LAST USED', value: (r: ImageRow, full: boolean) => (full ? fullTime(r.lastUsed) : humanTime(r.lastUsed)) },
} as const;
type Field = keyof typeof FIELDS;

const SORTS: Record<string, (a: ImageRow, b: ImageRow) => number> = {
  name: (a, b) => shownName(a).localeCompare(shownName(b)),
  importtime: (a, b) => a.importTime - b.importTime,
  lastused: (a, b) => a.lastUsed - b.lastUsed,
  size: (a, b) => a.size + a.treeSize - (b.size + b.treeSize),
};

/** Docker images under their full `registry/repo:tag`, ACIs as `name:version`. */
function shownName(r: ImageRow): string {
  if (r.kind === 'docker') return r.manifest.annotations?.find((a) => a.name === 'appc.io/docker/originalname')?.value ?? displayName(r.manifest);
  return displayName(r.manifest);
}

function splitList(v: string): string[] {
  return v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}

export const command: Command = {
  name: 'image list',
  usage: 'image list',
  summary: 'List images in the local store',
  flags: [
    { name: 'fields', type: 'string', default: 'id,name,size,importtime,lastused', help: 'comma-separated list of fields to display. Accepted values: id, name, importtime, lastused, size' },
    { name: 'sort', type: 'string', default: 'importtime', help: 'sort the output according to the provided comma-separated list of fields. Accepted values: name, importtime, lastused, size' },
    { name: 'order', type: 'string', default: 'asc', help: 'choose the sorting order if at least one sort field is provided (--sort). Accepted values: asc, desc' },
    { name: 'full', type: 'bool', default: false, help: 'use long output format' },
    { name: 'no-legend', type: 'bool', default: false, help: 'suppress a legend with the list' },
    { name: 'format', type: 'string', default: '', help: 'choose the output format. Allowed format includes "json", "json-pretty". If empty, human-readable format is used' },
  ],
  async run(ctx, parsed) {
    const v = parsed.values;
    const fields = splitList(v.fields as string);
    for (const f of fields) if (!(f in FIELDS)) throw usage(`unknown field "${f}" for --fields; accepted: ${Object.keys(FIELDS).join(', ')}`);
    const sorts = splitList(v.sort as string);
    for (const s of sorts) if (!SORTS[s]) throw usage(`unknown field "${s}" for --sort; accepted: ${Object.keys(SORTS).join(', ')}`);
    const order = v.order as string;
    if (order !== 'asc' && order !== 'desc') throw usage(`invalid --order "${order}": accepted asc, desc`);
    const format = v.format as string;
    if (!['', 'json', 'json-pretty'].includes(format)) throw usage(`invalid --format "${format}": accepted json, json-pretty`);

    let rows: ImageRow[];
    {
      using store = openStore(ctx.global);
      rows = store.list().filter((r) => r.kind !== 'layer');
    }
    rows.sort((a, b) => {
      for (const s of sorts) {
        const c = (SORTS[s] as (a: ImageRow, b: ImageRow) => number)(a, b);
        if (c !== 0) return order === 'asc' ? c : -c;
      }
      return 0;
    });
    if (format !== '') {
      const list = rows.map((r) => ({ id: r.key, name: shownName(r), import_time: msToNs(r.importTime), last_used_time: msToNs(r.lastUsed), size: r.size + r.treeSize }));
      ctx.stdout.write(`${jsonWithNanos(list, format === 'json-pretty')}\n`);
      return 0;
    }
    const full = v.full as boolean;
    const table: string[][] = [];
    if (!v['no-legend']) table.push(fields.map((f) => FIELDS[f as Field].header));
    for (const r of rows) table.push(fields.map((f) => FIELDS[f as Field].value(r, full)));
    if (table.length > 0) ctx.stdout.write(tabwrite(table));
    return 0;
  },
};

