// rkt's image/app argument grammar (rkt/cli_apps.go), pure:
//   [pod flags] IMAGE [app flags] [-- ARGS… [---]] IMAGE2 [app flags] …
// Pod flags come before the first image; app flags attach to the image
// before them; `--` starts that image's arguments, `---` ends them.
// `--mount` before any image applies to every app.
import { usage } from '../lib/errors.ts';
import { consumeFlag, defaults, findFlag, isFlagToken, type FlagDef, type FlagValues } from './flags.ts';

export interface AppArgs {
  image: string;
  flags: FlagValues;
  set: Set<string>;
  /** Arguments after `--`, or undefined if none were given. */
  args: string[] | undefined;
}

export interface ParsedRun {
  pod: FlagValues;
  podSet: Set<string>;
  apps: AppArgs[];
  /** --mount values given before the first image (they apply to all apps). */
  globalMounts: string[];
}

export const APP_FLAGS: readonly FlagDef[] = [
  { name: 'signature', type: 'string', default: '', help: 'local signature file to use in validating the preceding image' },
  { name: 'exec', type: 'string', default: '', help: 'override the exec command for the preceding image' },
  { name: 'working-dir', type: 'string', default: '', help: 'override the working directory of the preceding image' },
  { name: 'readonly-rootfs', type: 'bool', default: false, help: 'mount rootfs read-only' },
  { name: 'mount', type: 'strings', help: 'mount point binding a volume to a path within an app (volume=NAME,target=PATH)' },
  { name: 'user', type: 'string', default: '', help: 'user override for the preceding image (uid, name or path in the image)' },
  { name: 'group', type: 'string', default: '', help: 'group override for the preceding image (gid, name or path in the image)' },
  { name: 'supplementary-gids', type: 'string', default: '', help: 'supplementary group IDs override for the preceding image (comma-separated)' },
  { name: 'name', type: 'string', default: '', help: 'set the name of the app (default: the last component of the image name)' },
  { name: 'annotation', type: 'strings', help: 'set an annotation on the app (NAME=VALUE)' },
  { name: 'user-annotation', type: 'strings', help: 'set a user annotation on the app (NAME=VALUE)' },
  { name: 'user-label', type: 'strings', help: 'set a user label on the app (NAME=VALUE)' },
  { name: 'environment', type: 'strings', help: 'set an environment variable for the app (NAME=VALUE)' },
  { name: 'memory', type: 'string', default: '', help: 'memory limit for the preceding image (example: 1024Mi, 1G)' },
  { name: 'cpu', type: 'string', default: '', help: 'CPU limit for the preceding image (example: 500m)' },
  { name: 'cpu-shares', type: 'string', default: '', help: 'CPU shares for the preceding image' },
  { name: 'caps-retain', type: 'string', default: '', help: 'capability retain set for the preceding image' },
  { name: 'caps-remove', type: 'string', default: '', help: 'capability remove set for the preceding image' },
  { name: 'cap-retain', type: 'string', default: '', help: 'deprecated alias of --caps-retain', hidden: true },
  { name: 'cap-remove', type: 'string', default: '', help: 'deprecated alias of --caps-remove', hidden: true },
  { name: 'seccomp', type: 'string', default: '', help: 'seccomp filter override for the preceding image (mode=retain|remove[,errno=EXXX],SYSCALL,@GROUP…)' },
  { name: 'oom-score-adj', type: 'string', default: '', help: 'oom-score-adj isolator override for the preceding image' },
  { name: 'stdin', type: 'string', default: '', help: 'stdin mode for the preceding application', hidden: true },
  { name: 'stdout', type: 'string', default: '', help: 'stdout mode for the preceding application', hidden: true },
  { name: 'stderr', type: 'string', default: '', help: 'stderr mode for the preceding application', hidden: true },
];

export function parseRunArgs(argv: readonly string[], podFlags: readonly FlagDef[], appFlags: readonly FlagDef[] = APP_FLAGS): ParsedRun {
  const pod = defaults(podFlags);
  const podSet = new Set<string>();
  const apps: AppArgs[] = [];
  const globalMounts: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const t = argv[i] as string;
    if (t === '---') {
      i++;
      continue;
    }
    if (t === '--') {
      const app = apps.at(-1);
      if (!app) throw usage('an image is required before any app arguments');
      if (app.args !== undefined) throw usage('only one set of app arguments allowed per image');
      let j = i + 1;
      while (j < argv.length && argv[j] !== '---') j++;
      app.args = argv.slice(i + 1, j);
      i = j + 1;
      continue;
    }
    if (isFlagToken(t)) {
      const app = apps.at(-1);
      if (!app) {
        if (findFlag(appFlags, t) && !findFlag(podFlags, t)) {
          const f = findFlag(appFlags, t);
          if (f?.def.name !== 'mount') throw usage(`--${f?.def.name} must follow an image`);
          const tmp = defaults(appFlags);
          i += consumeFlag(argv, i, appFlags, tmp, new Set());
          globalMounts.push(...(tmp.mount as string[]));
          continue;
        }
        i += consumeFlag(argv, i, podFlags, pod, podSet);
        continue;
      }
      if (!findFlag(appFlags, t) && findFlag(podFlags, t)) {
        throw usage(`${t.split('=')[0]} is a pod flag: give it before the first image`);
      }
      i += consumeFlag(argv, i, appFlags, app.flags, app.set);
      continue;
    }
    apps.push({ image: t, flags: defaults(appFlags), set: new Set(), args: undefined });
    i++;
  }
  return { pod, podSet, apps, globalMounts };
}

/** Parses `K=V` pairs (annotations, labels, env). */
export function parseKeyValues(values: readonly string[], what: string): [string, string][] {
  return values.map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw usage(`invalid ${what} "${v}": expected NAME=VALUE`);
    return [v.slice(0, eq), v.slice(eq + 1)];
  });
}
