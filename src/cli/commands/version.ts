import type { Command } from '../command.ts';
import { out } from '../command.ts';
import { APPC_VERSION, RKT_VERSION } from '../../lib/version.ts';

export const command: Command = {
  name: 'version',
  usage: 'version',
  summary: 'Print the version and exit',
  flags: [],
  async run(ctx) {
    out(
      ctx,
      [
        `rkt Version: ${RKT_VERSION}`,
        `appc Version: ${APPC_VERSION}`,
        `Node Version: ${process.version}`,
        `Node OS/Arch: ${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
        'Features: -TPM -SDJOURNAL',
      ].join('\n'),
    );
    return 0;
  },
};
