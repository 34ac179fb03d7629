// Help texts in cobra's layout.
import type { Command } from './command.ts';
import type { Entry } from './registry.ts';

export function rootHelp(commands: readonly Entry[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.filter((c) => !c.hidden).map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`);
  return `A CLI for running app containers on Linux.

To get the help on any specific command, run "rkt help command".

Usage:
  rkt [command]

Available Commands:
${lines.join('\n')}

Flags:
      --debug                        print out more debug information to stderr
      --dir string                   rkt data directory (default "/var/lib/rkt")
      --insecure-options string      comma-separated list of security features to disable (default "none")
      --local-config string          local configuration directory (default "/etc/rkt")
      --system-config string         system configuration directory (default "/usr/lib/rkt")
      --trust-keys-from-https        automatically trust gpg keys fetched from https
      --user-config string           user configuration directory

Use "rkt [command] --help" for more information about a command.
`;
}

export function commandHelp(cmd: Command, flags: string, globals: string): string {
  return `${cmd.description ?? cmd.summary}

Usage:
  rkt ${cmd.usage}
${flags ? `\nFlags:\n${flags}\n` : ''}
Global Flags:
${globals}
`;
}
