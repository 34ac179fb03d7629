// `rkt completion bash`: a static bash completion script for commands and flags.
import { GLOBAL_FLAGS } from '../../config/global.ts';
import { usage } from '../../lib/errors.ts';
import type { Command } from '../command.ts';
import { out } from '../command.ts';
import { COMMANDS } from '../registry.ts';

export const command: Command = {
  name: 'completion',
  usage: 'completion SHELL',
  summary: 'Output shell completion code for the specified shell',
  description: 'Output shell completion code for the specified shell (bash).\n\nTo load it: source <(rkt completion bash)',
  flags: [],
  async run(ctx, parsed) {
    const shell = parsed.positionals[0];
    if (shell !== 'bash') throw usage(shell ? `unsupported shell type "${shell}"` : 'shell not specified');
    const cmds = COMMANDS.filter((c) => !c.hidden).map((c) => c.name).join(' ');
    const flags = GLOBAL_FLAGS.filter((f) => !f.hidden).map((f) => `--${f.name}`).join(' ');
    out(
      ctx,
      `# bash completion for rkt
_rkt() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  local i cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in -*) ;; *) cmd=\${COMP_WORDS[i]}; break ;; esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${cmds} ${flags}" -- "$cur"))
  elif [[ $cmd == image ]]; then
    COMPREPLY=($(compgen -W "cat-manifest export extract gc list render rm verify" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "${flags}" -- "$cur"))
  fi
}
complete -o default -F _rkt rkt`,
    );
    return 0;
  },
};
