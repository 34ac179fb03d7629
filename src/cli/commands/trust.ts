// `rkt trust`: add public keys to the local trust store (rkt/trust.go,
// rkt/pubkey/pubkey.go). Keys come from files, https:// URLs, or, with only
// --prefix, from the prefix's `ac-discovery-pubkeys` meta tags. Each key is
// shown (fingerprint, uids, subkeys) and must be confirmed unless
// --skip-fingerprint-review, or --trust-keys-from-https for https keys.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PublicKey } from 'openpgp';
import { RktError, errMessage, usage } from '../../lib/errors.ts';
import { formatFingerprint, keyInfo, readPublicKeys } from '../../image/trust/fingerprint.ts';
import { isACIdentifier, storeTrustedKey } from '../../image/trust/keystore.ts';
import type { Command, CommandContext } from '../command.ts';
import { out } from '../command.ts';

const USAGE = 'trust [--prefix=PREFIX] [--insecure-allow-http] [--skip-fingerprint-review] [--root] [PUBKEY ...]';

interface Source {
  /** As the user (or discovery) gave it. */
  location: string;
  kind: 'file' | 'https' | 'http';
  /** File path or URL. */
  target: string;
}

function classify(location: string, allowHttp: boolean): Source {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) return { location, kind: 'file', target: location };
  if (scheme === 'file') {
    try {
      return { location, kind: 'file', target: fileURLToPath(location) };
    } catch (err) {
      throw usage(`invalid key location "${location}": ${errMessage(err)}`);
    }
  }
  if (scheme === 'https') return { location, kind: 'https', target: location };
  if (scheme === 'http') {
    if (!allowHttp) {
      throw new RktError('INSECURE', `refusing to fetch the key "${location}" over plain http`, {
        hint: 'use an https:// URL, or pass --insecure-allow-http',
      });
    }
    return { location, kind: 'http', target: location };
  }
  throw usage(`unsupported key location "${location}": give a file path or an https:// URL`);
}

async function loadKeys(ctx: CommandContext, src: Source, allowHttp: boolean): Promise<{ data: Uint8Array; keys: PublicKey[] }> {
  let data: Uint8Array;
  if (src.kind === 'file') {
    try {
      data = await readFile(src.target);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : errMessage(err);
      throw new RktError('NOT_FOUND', `cannot read the key "${src.location}": ${why}`, { cause: err });
    }
  } else {
    const { fetchBuffer } = await import('../../image/fetch/http.ts');
    const res = await fetchBuffer(src.target, { insecureTls: ctx.global.insecure.has('tls'), allowHttp });
    data = res.body;
  }
  return { data, keys: await readPublicKeys(data, { code: 'USAGE', what: `key "${src.location}"` }) };
}

function display(ctx: CommandContext, prefix: string, src: Source, keys: readonly PublicKey[]): void {
  const lines = [`Prefix: "${prefix}"${prefix === '' ? ' (root key: trusted for all images)' : ''}`, `Key: "${src.location}"`];
  for (const key of keys) {
    const info = keyInfo(key);
    lines.push(`GPG key fingerprint is: ${formatFingerprint(info.fingerprint)}`);
    for (const sub of info.subkeys) lines.push(`    Subkey fingerprint: ${formatFingerprint(sub)}`);
    for (const uid of info.uids) lines.push(`\t${uid}`);
  }
  ctx.stderr.write(`${lines.join('\n')}\n`);
}

/** Reads answers line by line from stdin (piped or a terminal). */
class Prompter {
  #lines: AsyncIterator<string> | undefined;
  #close: (() => void) | undefined;

  async ask(ctx: CommandContext, question: string): Promise<string | undefined> {
    if (!this.#lines) {
      const rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
      this.#lines = rl[Symbol.asyncIterator]();
      this.#close = () => rl.close();
    }
    ctx.stderr.write(question);
    const next = await this.#lines.next();
    // A typed answer ends the line on the terminal; a piped one does not.
    if (next.done || !process.stdin.isTTY) ctx.stderr.write('\n');
    return next.done ? undefined : next.value;
  }

  close(): void {
    this.#close?.();
  }
}

export const command: Command = {
  name: 'trust',
  usage: USAGE,
  summary: 'Trust a key for image verification',
  description: `Adds keys to the local keystore for use in verifying signed images.

PUBKEY may be either a local file or URL.

PREFIX scopes the applicability of PUBKEY to image names sharing PREFIX.

Meta discovery of PUBKEY at PREFIX will be attempted if no PUBKEY is specified.

To trust a key for all images instead of for specific images, --root can be
specified. Path to a key file must be given (no discovery).`,
  flags: [
    { name: 'prefix', type: 'string', default: '', help: 'prefix to limit trust to' },
    { name: 'root', type: 'bool', default: false, help: 'add root key from filesystem without a prefix' },
    { name: 'skip-fingerprint-review', type: 'bool', default: false, help: 'accept key without fingerprint confirmation' },
    { name: 'insecure-allow-http', type: 'bool', default: false, help: 'allow HTTP use for key discovery and/or retrieval' },
  ],
  async run(ctx, parsed) {
    const prefix = parsed.values.prefix as string;
    const root = parsed.values.root as boolean;
    const skipReview = parsed.values['skip-fingerprint-review'] as boolean;
    const allowHttp = parsed.values['insecure-allow-http'] as boolean;
    const pubkeys = parsed.positionals;

    if (prefix !== '' && root) throw usage('--root and --prefix usage mutually exclusive');
    if (prefix === '' && !root) {
      if (pubkeys.length > 0) {
        throw new RktError('USAGE', 'aborting due to implicit unbounded trust (root domain): give --prefix or --root', {
          hint: 'trust for some images: rkt trust --prefix "example.com/foo" PUBKEY; for all images (not recommended): rkt trust --root PUBKEY',
        });
      }
      throw new RktError('USAGE', 'a --prefix (or --root with a PUBKEY) is required', { hint: `usage: rkt ${USAGE}` });
    }
    if (root && pubkeys.length === 0) {
      throw usage('--root needs at least one PUBKEY (a file or URL); root keys are not discovered');
    }
    if (prefix !== '') {
      const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(prefix)?.[1];
      if (scheme !== undefined) throw usage(`--prefix must not contain a URL scheme, omit ${scheme}://`);
      if (!isACIdentifier(prefix)) {
        throw usage(`invalid --prefix "${prefix}": must be an AC identifier such as "example.com/app" (lowercase, no scheme, no wildcards)`);
      }
    }

    let locations = pubkeys;
    if (locations.length === 0) {
      const { discoverPubkeys } = await import('../../image/fetch/discovery.ts');
      locations = await discoverPubkeys(prefix, { insecureTls: ctx.global.insecure.has('tls'), allowHttp });
      if (locations.length === 0) throw new RktError('DISCOVERY', `meta discovery on "${prefix}" resulted in no keys`);
    }
    // Check every location before fetching or asking anything.
    const sources = locations.map((l) => classify(l, allowHttp));

    const dirs = { systemConfig: ctx.global.systemConfig, localConfig: ctx.global.localConfig };
    const where = root ? { root: true } : { prefix };
    const prompter = new Prompter();
    try {
      for (const src of sources) {
        const { data, keys } = await loadKeys(ctx, src, allowHttp);
        display(ctx, prefix, src, keys);
        const auto = skipReview || (ctx.global.trustKeysFromHttps && src.kind === 'https');
        if (!auto) {
          const answer = await prompter.ask(ctx, 'Are you sure you want to trust this key (yes/no)? ');
          const a = answer?.trim().toLowerCase();
          if (a !== 'yes' && a !== 'y') {
            throw new RktError('USAGE', `not trusting "${src.location}": ${answer === undefined ? 'no answer on stdin' : 'the key was not accepted'}`, {
              hint: answer === undefined ? 'answer "yes" on stdin, or pass --skip-fingerprint-review after checking the fingerprint' : undefined,
            });
          }
        }
        const scope = root ? 'as a root key' : `for prefix "${prefix}"`;
        ctx.stderr.write(`Trusting "${src.location}" ${scope} ${auto ? 'without' : 'after'} fingerprint review.\n`);
        for (const key of keys) {
          // A single key is stored as given; several are split, one file each.
          const { path } = await storeTrustedKey(dirs, where, keys.length === 1 ? data : key.armor());
          out(ctx, root ? `Added root key at "${path}"` : `Added key for prefix "${prefix}" at "${path}"`);
        }
      }
    } finally {
      prompter.close();
    }
    return 0;
  },
};
