// The command table: names, one-line summaries and lazy loaders. Only the
// loader of the command being run is called.
import type { Command } from './command.ts';

export interface Entry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
  hidden?: boolean;
}

export const COMMANDS: readonly Entry[] = [
  { name: 'cat-manifest', summary: 'Inspect and print the pod manifest', load: async () => (await import('./commands/pod/cat-manifest.ts')).command },
  { name: 'completion', summary: 'Output shell completion code for the specified shell', load: async () => (await import('./commands/completion.ts')).command },
  { name: 'config', summary: 'Print configuration for each stage in JSON format', load: async () => (await import('./commands/config.ts')).command },
  { name: 'enter', summary: 'Enter the namespaces of an app within a rkt pod', load: async () => (await import('./commands/pod/enter.ts')).command },
  { name: 'export', summary: 'Export an app from an exited pod to an ACI file', load: async () => (await import('./commands/pod/export.ts')).command },
  { name: 'fetch', summary: 'Fetch image(s) and store them in the local store', load: async () => (await import('./commands/fetch.ts')).command },
  { name: 'gc', summary: 'Garbage collect rkt pods no longer in use', load: async () => (await import('./commands/pod/gc.ts')).command },
  { name: 'help', summary: 'Help about any command', load: async () => (await import('./commands/help.ts')).command },
  { name: 'image', summary: 'Operate on image(s) in the local store', load: async () => (await import('./commands/image.ts')).command },
  { name: 'logs', summary: "Print the logs of a pod's apps", load: async () => (await import('./commands/pod/logs.ts')).command },
  { name: 'list', summary: 'List pods', load: async () => (await import('./commands/pod/list.ts')).command },
  { name: 'prepare', summary: 'Prepare to run image(s) in a pod in rkt', load: async () => (await import('./commands/run.ts')).prepareCommand },
  { name: 'rm', summary: 'Remove all files and resources associated with an exited pod', load: async () => (await import('./commands/pod/rm.ts')).command },
  { name: 'run', summary: 'Run image(s) in a pod in rkt', load: async () => (await import('./commands/run.ts')).runCommand },
  { name: 'run-prepared', summary: 'Run a prepared application pod in rkt', load: async () => (await import('./commands/pod/run-prepared.ts')).command },
  { name: 'status', summary: 'Check the status of a rkt pod', load: async () => (await import('./commands/pod/status.ts')).command },
  { name: 'stop', summary: 'Stop a pod', load: async () => (await import('./commands/pod/stop.ts')).command },
  { name: 'trust', summary: 'Trust a key for image verification', load: async () => (await import('./commands/trust.ts')).command },
  { name: 'version', summary: 'Print the version and exit', load: async () => (await import('./commands/version.ts')).command },
  { name: '__net-teardown', summary: 'Tear down the networks of an exited pod (internal)', load: async () => (await import('./commands/net-teardown.ts')).command, hidden: true },
];

/** Finds a command by exact name or unambiguous prefix (cobra's prefix matching). */
export function lookup(name: string, table: readonly Entry[] = COMMANDS): Entry | undefined {
  const exact = table.find((e) => e.name === name);
  if (exact) return exact;
  const matches = table.filter((e) => e.name.startsWith(name));
  return matches.length === 1 ? matches[0] : undefined;
}
