// `rkt fetch IMAGE [--signature=FILE] [IMAGE …]`: fetches into the store and
// prints one image ID per image on stdout.
import { dataDir } from '../../config/files.ts';
import { GLOBAL_FLAGS } from '../../config/global.ts';
import { usage } from '../../lib/errors.ts';
import { formatId } from '../../image/aci/id.ts';
import type { Command } from '../command.ts';
import { out } from '../command.ts';
import { consumeFlag, defaults, isFlagToken, type FlagDef } from '../flags.ts';

const FLAGS: readonly FlagDef[] = [
  { name: 'signature', type: 'string', default: '', help: 'local signature file to use in validating the preceding image' },
  { name: 'full', type: 'bool', default: false, help: 'print the full image hash after fetching' },
  { name: 'pull-policy', type: 'string', default: 'update', help: 'when to pull an image: new, update or never' },
  { name: 'store-only', type: 'bool', default: false, help: 'use only available images in the store (deprecated: --pull-policy=never)', hidden: true },
  { name: 'no-store', type: 'bool', default: false, help: 'fetch images, ignoring the local store (deprecated: --pull-policy=update)', hidden: true },
];

export interface ImageArg {
  image: string;
  signature?: string;
}

/** Splits `IMG [--signature=F] IMG2 …`: --signature belongs to the image before it. */
export function parseFetchArgs(argv: readonly string[], flags: readonly FlagDef[]): { images: ImageArg[]; values: Record<string, unknown>; set: Set<string> } {
  const values = defaults(flags);
  const set = new Set<string>();
  const images: ImageArg[] = [];
  for (let i = 0; i < argv.length; ) {
    const t = argv[i] as string;
    if (!isFlagToken(t)) {
      images.push({ image: t });
      i++;
      continue;
    }
    const before = values.signature;
    i += consumeFlag(argv, i, flags, values, set);
    if (values.signature !== before) {
      const last = images.at(-1);
      if (!last) throw usage('--signature must follow an image');
      last.signature = values.signature as string;
      values.signature = '';
    }
  }
  return { images, values, set };
}

export const command: Command = {
  name: 'fetch',
  usage: 'fetch IMAGE_URL...',
  summary: 'Fetch image(s) and store them in the local store',
  description: `Fetch image(s) and store them in the local store

Locates and downloads remote ACIs and their attached signatures.
If the ACI is available in the local store, the image will not be fetched
again, unless --pull-policy=update (the default for fetch) finds a newer one.

Images can be given as local files (./image.aci, file://), https:// URLs,
or appc names (example.com/app:1.0) found by meta discovery.`,
  flags: FLAGS,
  rawArgs: true,
  async run(ctx) {
    const { images, values } = parseFetchArgs(ctx.argv, [...FLAGS, { name: 'help', short: 'h', type: 'bool', help: '' }]);
    if (values.help) {
      const { commandHelp } = await import('../help.ts');
      const { formatFlags } = await import('../flags.ts');
      ctx.stdout.write(commandHelp(this, formatFlags(FLAGS), formatFlags(GLOBAL_FLAGS)));
      return 0;
    }
    const global = ctx.global;
    if (images.length === 0) throw usage('fetch: at least one image is required');
    if (values['store-only'] && values['no-store']) throw usage('both --store-only and --no-store specified');
    const { fetchImage, parsePullPolicy } = await import('../../image/fetch/fetcher.ts');
    let policy = parsePullPolicy(values['pull-policy'] as string);
    if (values['store-only']) policy = 'never';
    if (values['no-store']) policy = 'update';
    const { Store } = await import('../../image/store/store.ts');
    using store = Store.open(dataDir(global));
    for (const img of images) {
      const row = await fetchImage(img.image, { store, global, pullPolicy: policy, signature: img.signature });
      out(ctx, formatId(row.key, values.full as boolean));
    }
    return 0;
  },
};
