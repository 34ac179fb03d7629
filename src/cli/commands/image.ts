// `rkt image`: the image store's command group.
import type { Command } from '../command.ts';
import type { Entry } from '../registry.ts';

const group: Entry[] = [
  { name: 'cat-manifest', summary: 'Inspect and print the image manifest', load: async () => (await import('./image/cat-manifest.ts')).command },
  { name: 'export', summary: 'Export a stored image to an ACI file', load: async () => (await import('./image/export.ts')).command },
  { name: 'extract', summary: 'Extract a stored image to a directory', load: async () => (await import('./image/extract.ts')).extractCommand },
  { name: 'gc', summary: 'Garbage collect local store', load: async () => (await import('./image/gc.ts')).command },
  { name: 'list', summary: 'List images in the local store', load: async () => (await import('./image/list.ts')).command },
  { name: 'render', summary: 'Render a stored image to a directory with all its dependencies', load: async () => (await import('./image/extract.ts')).renderCommand },
  { name: 'rm', summary: 'Remove one or more images with the given IDs or image names from the local store', load: async () => (await import('./image/rm.ts')).command },
  { name: 'verify', summary: 'Verify one or more rendered images in the local store', load: async () => (await import('./image/verify.ts')).command },
  { name: 'fetch', summary: 'Fetch image(s) and store them in the local store', hidden: true, load: async () => (await import('./fetch.ts')).command },
];

export const command: Command = {
  name: 'image',
  usage: 'image [command]',
  summary: 'Operate on image(s) in the local store',
  flags: [],
  group,
  async run(ctx) {
    const w = Math.max(...group.map((e) => e.name.length));
    ctx.stdout.write(`Operate on image(s) in the local store\n\nUsage:\n  rkt image [command]\n\nAvailable Commands:\n${group.filter((e) => !e.hidden).map((e) => `  ${e.name.padEnd(w)}  ${e.summary}`).join('\n')}\n`);
    return 0;
  },
};
