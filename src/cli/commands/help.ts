import { GLOBAL_FLAGS } from '../../config/global.ts';
import { RktError } from '../../lib/errors.ts';
import type { Command } from '../command.ts';
import { formatFlags } from '../flags.ts';
import { commandHelp, rootHelp } from '../help.ts';
import { COMMANDS, lookup } from '../registry.ts';

export const command: Command = {
  name: 'help',
  usage: 'help [command]',
  summary: 'Help about any command',
  flags: [],
  async run(ctx, parsed) {
    const [name, sub] = parsed.positionals;
    if (!name) {
      ctx.stdout.write(rootHelp(COMMANDS));
      return 0;
    }
    const entry = lookup(name);
    if (!entry) throw new RktError('USAGE', `unknown help topic "${name}"`);
    let cmd = await entry.load();
    if (sub && cmd.group) {
      const subEntry = lookup(sub, cmd.group);
      if (!subEntry) throw new RktError('USAGE', `unknown help topic "${name} ${sub}"`);
      cmd = await subEntry.load();
    }
    ctx.stdout.write(commandHelp(cmd, formatFlags(cmd.flags), formatFlags(GLOBAL_FLAGS)));
    return 0;
  },
};
