// Builds the bench fixtures with the test helpers (test/helpers/aci.ts):
//   make-images.ts tiny DIR COUNT   -> COUNT tiny distinct ACIs, one path per line
//   make-images.ts big DIR MBYTES   -> one busybox ACI padded to MBYTES MB
//                                      (uncompressed), gzip-compressed; prints its path
import { buildAci } from '../test/helpers/aci.ts';

const [mode, dir, nStr] = process.argv.slice(2);
if (!mode || !dir || !nStr) {
  process.stderr.write('usage: make-images.ts tiny|big DIR N\n');
  process.exit(2);
}
const n = Number(nStr);
if (mode === 'tiny') {
  for (let i = 0; i < n; i++) {
    const aci = await buildAci(dir, {
      name: `example.com/bench/tiny-${i}`,
      busybox: false,
      exec: ['/bin/true'],
      files: { 'etc/tiny-id': `${i}\n` },
      fileName: `tiny-${String(i).padStart(4, '0')}.aci`,
    });
    process.stdout.write(`${aci.path}\n`);
  }
} else if (mode === 'big') {
  // Padding of hex text compresses about 2:1 with gzip, like typical binaries.
  const bytes = n * 1000 * 1000;
  const aci = await buildAci(dir, {
    name: 'example.com/bench/big',
    pad: { bytes: bytes - 2_200_000, kind: 'hex' },
    compression: 'gzip',
    fileName: 'big.aci',
  });
  process.stderr.write(`big.aci: ${(aci.size / 1e6).toFixed(1)} MB uncompressed\n`);
  process.stdout.write(`${aci.path}\n`);
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
