// Reads an ACI's manifest without extracting anything: stops at the
// `manifest` member (by convention the first one, so this is cheap).
import * as tar from 'tar-stream';
import { RktError, errMessage } from '../lib/errors.ts';
import { parseImageManifest, type ImageManifest } from './aci/manifest.ts';
import { openDecompressed } from './decompress.ts';
import { normalizeEntryName } from './tarpath.ts';

export async function peekManifest(path: string): Promise<ImageManifest> {
  const source = openDecompressed(path);
  const ex = tar.extract();
  source.on('error', (e) => ex.destroy(e));
  source.pipe(ex);
  try {
    for await (const e of ex) {
      if (normalizeEntryName(e.header.name) === 'manifest') {
        const chunks: Buffer[] = [];
        for await (const c of e) chunks.push(c as Buffer);
        return parseImageManifest(Buffer.concat(chunks));
      }
      e.resume();
    }
  } catch (e) {
    if (e instanceof RktError) throw e;
    throw new RktError('BAD_ARCHIVE', `corrupt or truncated archive: ${errMessage(e)}`, { cause: e });
  } finally {
    source.unpipe(ex);
    source.destroy();
    ex.destroy();
  }
  throw new RktError('INVALID_IMAGE', 'invalid image: the archive has no "manifest"');
}
