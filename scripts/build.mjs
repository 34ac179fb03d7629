// Bundles the CLI into dist/ with esbuild. Each command is its own lazily
// imported chunk (code splitting), so `rkt version` loads almost nothing.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';

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

// The pod monitor (stage1/monitor.c): a small C supervisor, see stage1/README.md.
const monitorSrc = new URL('../stage1/monitor.c', import.meta.url).pathname;
if (existsSync(monitorSrc)) {
  const out = new URL('../dist/stage1/rkt-monitor', import.meta.url).pathname;
  mkdirSync(new URL('../dist/stage1/', import.meta.url).pathname, { recursive: true });
  execFileSync(process.env.CC || 'cc', ['-O2', '-Wall', '-Wextra', '-o', out, monitorSrc], { stdio: 'inherit' });
}
