// `rkt config`: the merged configuration of all layers, as rkt prints it.
import { loadConfig } from '../../config/files.ts';
import type { Command } from '../command.ts';
import { out } from '../command.ts';

export const command: Command = {
  name: 'config',
  usage: 'config',
  summary: 'Print configuration for each stage in JSON format',
  flags: [{ name: 'pretty-print', type: 'bool', default: true, help: 'apply indent to format the output' }],
  async run(ctx, parsed) {
    const cfg = loadConfig(ctx.global);
    const stage0: unknown[] = [];
    for (const [domain, a] of Object.entries(cfg.auth)) {
      stage0.push({ rktVersion: 'v1', rktKind: 'auth', domains: [domain], type: a.type, credentials: a.credentials });
    }
    for (const [registry, a] of Object.entries(cfg.dockerAuth)) {
      stage0.push({ rktVersion: 'v1', rktKind: 'dockerAuth', registries: [registry], credentials: a });
    }
    stage0.push({ rktVersion: 'v1', rktKind: 'paths', data: cfg.paths.data ?? ctx.global.dir, stage1images: cfg.paths.stage1Images ?? '' });
    if (cfg.stage1.name || cfg.stage1.location) {
      stage0.push({ rktVersion: 'v1', rktKind: 'stage1', name: cfg.stage1.name ?? '', version: cfg.stage1.version ?? '', location: cfg.stage1.location ?? '' });
    }
    out(ctx, JSON.stringify({ stage0 }, null, parsed.values['pretty-print'] ? '\t' : undefined));
    return 0;
  },
};
