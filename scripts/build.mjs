// Bundles the CLI into dist/ with esbuild, as CommonJS: dist/main.js is the
// CLI (flags, command table, loaded by the dist/rkt.js stub) and each command is its own self-contained
// bundle in dist/cmd/, required only when that command runs. CommonJS
// because Node's ESM loader costs ~1–2 ms per module file and tens of ms in
// all on the `rkt run` path; one file per command keeps that to one load.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const commandsDir = join(root, 'src/cli/commands');
const dist = join(root, 'dist');

/** Output name of a command module: src/cli/commands/pod/list.ts → pod-list. */
const cmdName = (abs) => relative(commandsDir, abs).replace(/\.ts$/, '').split('/').join('-');

// Commands reached by dynamic import from the command tables become entry points.
const lazyImporters = new Set([join(root, 'src/cli/registry.ts'), join(commandsDir, 'image.ts')]);
const entries = { main: join(root, 'src/cli/main.ts') };
const walk = (d) => {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (n.endsWith('.ts')) entries[`cmd/${cmdName(p)}`] = p;
  }
};
walk(commandsDir);

// Modules reached by dynamic import that the common paths never take
// (fetching, importing, verifying): each is its own bundle next to the
// commands (dist/cmd/_<path>.js), so `rkt run` of a stored image neither
// reads nor compiles them (~200 KB with tar-stream and the registry client).
// Shared modules (errors, store…) are copied into each bundle; none keeps
// state that must be shared (log state lives on globalThis).
const chunkSources = ['image/docker/pull.ts', 'image/fetch/http.ts', 'image/fetch/discovery.ts', 'image/import.ts', 'image/extract.ts', 'image/trust/verify.ts', 'image/peek.ts', 'pod/podmanifest.ts'];
const chunks = new Map(chunkSources.map((p) => [join(root, 'src', p), `_${p.replace(/\.ts$/, '').split('/').join('-')}`]));
for (const [abs, name] of chunks) entries[`cmd/${name}`] = abs;
// The worker thread that unpacks a big Docker layer (loaded by path, next to the pull chunk).
entries['cmd/_image-docker-unpack-worker'] = join(root, 'src/image/docker/unpack-worker.ts');

const lazyCommands = {
  name: 'lazy-commands',
  setup(b) {
    b.onResolve({ filter: /\.ts$/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const target = resolve(dirname(args.importer), args.path);
      // Every importer of a chunk is bundled into dist/cmd/, where the chunks are too.
      const chunk = chunks.get(target);
      if (chunk) return { path: `./${chunk}.js`, external: true };
      if (!lazyImporters.has(args.importer)) return undefined;
      if (!target.startsWith(commandsDir)) return undefined;
      const fromDir = args.importer === join(root, 'src/cli/registry.ts') ? dist : join(dist, 'cmd');
      let rel = relative(fromDir, join(dist, 'cmd', `${cmdName(target)}.js`));
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return { path: rel, external: true };
    });
  },
};

rmSync(dist, { recursive: true, force: true });
await build({
  entryPoints: entries,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node24',
  outdir: dist,
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  plugins: [lazyCommands],
  // import() becomes a lazy require(): internal modules load only when reached.
  supported: { 'dynamic-import': false },
  // Big and needed only to verify signatures: loaded from node_modules when used.
  external: ['openpgp'],
  logLevel: 'warning',
});
// Bundles must be pure ASCII: one non-ASCII character (esbuild keeps some
// comments as written) makes Node decode the whole file into a two-byte
// string, which costs several ms per start for run.js. \uXXXX means the
// same character in strings, templates, regexps and identifiers alike.
for (const f of [join(dist, 'main.js'), ...readdirSync(join(dist, 'cmd')).map((n) => join(dist, 'cmd', n))]) {
  const src = readFileSync(f, 'utf8');
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(src)) writeFileSync(f, src.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
// package.json says "type": "module"; the bundles are CommonJS.
writeFileSync(join(dist, 'package.json'), '{ "type": "commonjs" }\n');
// The entry Node starts is compiled before any cache can be enabled: keep it
// a stub that turns V8's compile cache on (dist/.cache) and then loads the
// CLI (dist/main.js) and the command bundles through it. Compiling
// dist/cmd/run.js alone costs ~15 ms per start without the cache.
writeFileSync(
  join(dist, 'rkt.js'),
  `'use strict';
try {
  require('node:module').enableCompileCache(require('node:path').join(__dirname, '.cache'));
} catch {
  /* read-only install: no cache */
}
require('./main.js');
`,
);

// C programs are linked statically when libc.a is there: no dynamic loader
// at each exec on the start path of a pod (the launcher, then the monitor).
const cc = (out, src) => {
  const args = ['-O2', '-Wall', '-Wextra', '-o', out, src];
  try {
    execFileSync(process.env.CC || 'cc', ['-static', ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
  } catch {
    execFileSync(process.env.CC || 'cc', args, { stdio: 'inherit' });
  }
};

// The pod monitor (stage1/monitor.c): a small C supervisor, see stage1/README.md.
const monitorSrc = join(root, 'stage1/monitor.c');
if (existsSync(monitorSrc)) {
  mkdirSync(join(dist, 'stage1'), { recursive: true });
  cc(join(dist, 'stage1/rkt-monitor'), monitorSrc);
}
// bin/rkt, the launcher (launcher/launcher.c): runs dist/rkt.js with Node 24
// and execs the pod monitor itself so that Node's exit is off the start path.
// Built to a temp name and renamed: a running bin/rkt is never overwritten.
const launcherSrc = join(root, 'launcher/launcher.c');
if (existsSync(launcherSrc)) {
  const tmp = join(root, 'bin', `.rkt.${process.pid}`);
  mkdirSync(join(root, 'bin'), { recursive: true });
  cc(tmp, launcherSrc);
  renameSync(tmp, join(root, 'bin', 'rkt'));
}
