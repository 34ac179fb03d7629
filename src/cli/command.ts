// The shape every subcommand module exports. Modules are imported lazily by
// main.ts, so only the command that runs is loaded.
import type { GlobalOptions } from '../config/global.ts';
import type { FlagDef, Parsed } from './flags.ts';
import type { Entry } from './registry.ts';
import type { Out } from './stdio.ts';

export interface CommandContext {
  global: GlobalOptions;
  /** The raw arguments after the command name (for commands with their own grammar). */
  argv: readonly string[];
  stdout: Out;
  stderr: Out;
}

export interface Command {
  /** Full name, e.g. `image list`. */
  name: string;
  usage: string;
  summary: string;
  description?: string;
  flags: readonly FlagDef[];
  /** Parse with pflag's SetInterspersed(false). */
  stopAtPositional?: boolean;
  /** The command parses its own arguments from ctx.argv (rkt's app grammar). */
  rawArgs?: boolean;
  /** A command group (`rkt image`): its subcommands. */
  group?: readonly Entry[];
  /** Returns the process exit code. */
  run(ctx: CommandContext, parsed: Parsed): Promise<number>;
}

export function out(ctx: CommandContext, text: string): void {
  ctx.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
}
