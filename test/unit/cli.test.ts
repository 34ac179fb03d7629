import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunArgs } from '../../src/cli/apps.ts';
import { parseFlags, type FlagDef } from '../../src/cli/flags.ts';
import { humanSize, humanTime, tabwrite } from '../../src/cli/output.ts';
import { RUN_FLAGS, flavorOf } from '../../src/cli/commands/run.ts';
import { parseNetFlags } from '../../src/net/config.ts';
import { parseInsecureOptions } from '../../src/config/insecure.ts';
import { parseDuration, formatDuration } from '../../src/lib/duration.ts';
import { RktError } from '../../src/lib/errors.ts';

const defs: FlagDef[] = [
  { name: 'full', type: 'bool', help: '' },
  { name: 'name', type: 'string', default: 'x', help: '' },
  { name: 'env', type: 'strings', help: '' },
  { name: 'wait', type: 'string', default: 'false', bare: 'true', help: '' },
];

test('flags: pflag forms', () => {
  const p = parseFlags(['--full', '--name', 'a', '--env=A=1', '--env', 'B=2', 'pos', '--wait', '--', 'rest'], defs);
  assert.equal(p.values.full, true);
  assert.equal(p.values.name, 'a');
  assert.deepEqual(p.values.env, ['A=1', 'B=2']);
  assert.equal(p.values.wait, 'true');
  assert.deepEqual(p.positionals, ['pos']);
  assert.deepEqual(p.rest, ['rest']);
  assert.equal(parseFlags(['--full=false'], defs).values.full, false);
  assert.equal(parseFlags(['--wait=5s'], defs).values.wait, '5s');
});

test('flags: unknown flag and missing value are usage errors', () => {
  assert.throws(() => parseFlags(['--nope'], defs), (e: unknown) => e instanceof RktError && /unknown flag: --nope/.test(e.message));
  assert.throws(() => parseFlags(['--name'], defs), /needs an argument/);
  assert.throws(() => parseFlags(['--full=maybe'], defs), /invalid argument/);
});

test('run grammar: per-app flags, app args and ---', () => {
  const r = parseRunArgs(['--net=host', '--mount', 'volume=v,target=/x', 'img1', '--exec', '/bin/sh', '--', '-c', 'echo hi', '---', 'img2', '--name=two'], RUN_FLAGS);
  assert.deepEqual(r.pod.net, ['host']);
  assert.deepEqual(r.globalMounts, ['volume=v,target=/x']);
  assert.equal(r.apps.length, 2);
  assert.equal(r.apps[0]?.image, 'img1');
  assert.equal(r.apps[0]?.flags.exec, '/bin/sh');
  assert.deepEqual(r.apps[0]?.args, ['-c', 'echo hi']);
  assert.equal(r.apps[1]?.flags.name, 'two');
  assert.equal(r.apps[1]?.args, undefined);
});

test('run grammar: errors as rkt words them', () => {
  assert.throws(() => parseRunArgs(['--', 'x'], RUN_FLAGS), /an image is required before any app arguments/);
  assert.throws(() => parseRunArgs(['--exec=/x', 'img'], RUN_FLAGS), /--exec must follow an image/);
  assert.throws(() => parseRunArgs(['img', '--', 'a', '---', '--', 'b'], RUN_FLAGS), /an image is required|only one set/);
  assert.throws(() => parseRunArgs(['img', '--net=host'], RUN_FLAGS), /pod flag/);
});

test('net and flavor selection', () => {
  assert.deepEqual(parseNetFlags([]), { kind: 'contained', requests: [{ name: 'default', args: '' }], all: false });
  assert.equal(parseNetFlags(['host']).kind, 'host');
  assert.equal(parseNetFlags(['none']).kind, 'none');
  assert.throws(() => parseNetFlags(['host,none']), /cannot be combined/);
  assert.throws(() => parseNetFlags(['default,default']), /more than once/);
  assert.equal(flavorOf({}), 'default');
  assert.equal(flavorOf({ 'stage1-name': 'coreos.com/rkt/stage1-fly:1.30.0' }), 'fly');
  assert.equal(flavorOf({ 'stage1-path': '/usr/lib/rkt/stage1-images/stage1-fly.aci' }), 'fly');
  assert.throws(() => flavorOf({ 'stage1-name': 'fly', 'stage1-path': 'x' }), /only one of/);
});

test('insecure options expand as rkt', () => {
  assert.deepEqual([...parseInsecureOptions(['all-fetch'])].sort(), ['http', 'image', 'pubkey', 'tls']);
  assert.deepEqual([...parseInsecureOptions(['none'])], []);
  assert.deepEqual([...parseInsecureOptions(['image,tls', 'http'])].sort(), ['http', 'image', 'tls']);
  assert.throws(() => parseInsecureOptions(['bogus']), /invalid value "bogus"/);
});

test('durations as Go parses them', () => {
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.throws(() => parseDuration('10'), /invalid duration/);
  assert.equal(formatDuration(1_800_000), '30m0s');
});

test('output: tabwriter with tabs, sizes, times', () => {
  assert.equal(tabwrite([['ID', 'NAME'], ['sha512-0123456789ab', 'x']]), 'ID\t\t\tNAME\nsha512-0123456789ab\tx\n');
  assert.equal(humanSize(5), '5B');
  assert.equal(humanSize(2048), '2.0KiB');
  assert.equal(humanSize(12 * 1024 * 1024), '12MiB');
  const now = 1_000_000_000;
  assert.equal(humanTime(now, now), 'now');
  assert.equal(humanTime(now - 120_000, now), '2 minutes ago');
  assert.equal(humanTime(now - 3_600_000, now), '1 hour ago');
});
