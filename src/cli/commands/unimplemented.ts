// Placeholder for commands of later milestones: a clear refusal, not a crash.
import { RktError } from '../../lib/errors.ts';
import type { Command } from '../command.ts';

export function make(name: string): Command {
  return {
    name,
    usage: name,
    summary: `${name} (not available yet)`,
    flags: [],
    rawArgs: true,
    async run() {
      throw new RktError('USAGE', `"${name}" is not implemented in this version of rkt yet`);
    },
  };
}
