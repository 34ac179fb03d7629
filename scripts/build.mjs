// Bundles the CLI into dist/ with esbuild. Each command is its own lazily
// imported chunk (code splitting), so `rkt version` loads almost nothing.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { rkt: 'src/cli/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // Some dependencies use require(); ESM bundles need a real require.
  banner: { js: "import { createRequire as __rktCreateRequire } from 'node:module'; const require = __rktCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
