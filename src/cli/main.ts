// Entry point: global flags, command dispatch, error-to-exit-code mapping.
import { GLOBAL_FLAGS, globalOptions } from '../config/global.ts';
import { EXIT, RktError, errMessage } from '../lib/errors.ts';
import { takeHandoff } from '../lib/handoff.ts';
import { isDebug, setDebug } from '../lib/log.ts';
import type { Command, CommandContext } from './command.ts';
import { consumeFlag, defaults, findFlag, formatFlags, isFlagToken, parseFlags } from './flags.ts';
import { commandHelp, rootHelp } from './help.ts';
import { fdWriter } from './stdio.ts';
import { COMMANDS, lookup } from './registry.ts';

takeHandoff();

async function resolveCommand(args: string[]): Promise<{ cmd: Command; rest: string[] } | { error: string }> {
  const name = args[0] as string;
  const entry = lookup(name);
  if (!entry) return { error: `unknown command "${name}" for "rkt"` };
  let cmd = await entry.load();
  let rest = args.slice(1);
  // Command groups (`rkt image list`): the next positional names the subcommand.
  while (cmd.group) {
    const sub = rest.find((a) => !isFlagToken(a));
    if (sub === undefined || rest[0] === '--help' || rest[0] === '-h') return { cmd, rest };
    const subEntry = lookup(sub, cmd.group);
    if (!subEntry) return { error: `unknown command "${sub}" for "rkt ${cmd.name}"` };
    rest = rest.filter((a, idx) => idx !== rest.indexOf(sub));
    cmd = await subEntry.load();
  }
  return { cmd, rest };
}

export async function main(argv: string[]): Promise<number> {
  // Global flags before the command name.
  const gvalues = defaults(GLOBAL_FLAGS);
  const gset = new Set<string>();
  let i = 0;
  while (i < argv.length && isFlagToken(argv[i] as string)) i += consumeFlag(argv, i, GLOBAL_FLAGS, gvalues, gset);
  const args = argv.slice(i);
  if (args.length === 0) {
    if (gvalues.help) {
      fdWriter(1).write(rootHelp(COMMANDS));
      return 0;
    }
    fdWriter(2).write(`rkt: missing command\n${rootHelp(COMMANDS)}`);
    return EXIT.MISSING_COMMAND;
  }
  const resolved = await resolveCommand(args);
  if ('error' in resolved) throw new RktError('USAGE', resolved.error, { hint: 'run "rkt help" for usage' });
  const { cmd, rest } = resolved;

  // Command flags and global flags may be mixed after the command name.
  const allFlags = [...cmd.flags, ...GLOBAL_FLAGS.filter((g) => !cmd.flags.some((f) => f.name === g.name))];
  let parsed;
  let argvForCmd = rest;
  if (cmd.rawArgs) {
    // The command parses its own grammar; global flags (before any `--`) are taken out here.
    argvForCmd = [];
    for (let j = 0; j < rest.length; ) {
      const t = rest[j] as string;
      if (t === '--') {
        argvForCmd.push(...rest.slice(j));
        break;
      }
      if (isFlagToken(t) && GLOBAL_FLAGS.some((g) => g.name !== 'help' && findFlag([g], t))) {
        j += consumeFlag(rest, j, GLOBAL_FLAGS, gvalues, gset);
        continue;
      }
      argvForCmd.push(t);
      j++;
    }
    parsed = { values: {}, set: new Set<string>(), positionals: [], rest: undefined };
  } else {
    parsed = parseFlags(rest, allFlags, { stopAtPositional: cmd.stopAtPositional ?? false });
    if (parsed.values.help) {
      fdWriter(1).write(commandHelp(cmd, formatFlags(cmd.flags), formatFlags(GLOBAL_FLAGS)));
      return 0;
    }
    for (const name of parsed.set) if (GLOBAL_FLAGS.some((g) => g.name === name)) gset.add(name);
    for (const g of GLOBAL_FLAGS) if (parsed.set.has(g.name)) gvalues[g.name] = parsed.values[g.name];
  }
  const global = globalOptions(gvalues, gset);
  setDebug(global.debug);
  const ctx: CommandContext = { global, argv: argvForCmd, stdout: fdWriter(1), stderr: fdWriter(2) };
  return cmd.run(ctx, parsed);
}

function report(err: unknown): number {
  if (err instanceof RktError) {
    fdWriter(2).write(`rkt: ${err.message}\n`);
    if (err.hint) fdWriter(2).write(`hint: ${err.hint}\n`);
    if (isDebug() && err.cause) fdWriter(2).write(`cause: ${errMessage(err.cause)}\n`);
    return err.exitCode;
  }
  fdWriter(2).write(`rkt: internal error: ${errMessage(err)}\n`);
  if (isDebug() && err instanceof Error && err.stack) fdWriter(2).write(`${err.stack}\n`);
  return EXIT.FAILURE;
}


main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
