import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatId, idPrefix, keyFromDigest } from '../../src/image/aci/id.ts';
import { checkOsArch, parseImageManifest } from '../../src/image/aci/manifest.ts';
import { detectCompression } from '../../src/image/decompress.ts';
import { parseMetaTags, renderTemplate } from '../../src/image/fetch/discovery.ts';
import { parseMaxAge } from '../../src/image/fetch/http.ts';
import { parseAppcName, parseImageRef } from '../../src/image/ref.ts';
import { ancestors, normalizeEntryName, symlinkStaysInside } from '../../src/image/tarpath.ts';

const good = {
  acKind: 'ImageManifest',
  acVersion: '0.8.11',
  name: 'example.com/app',
  labels: [
    { name: 'version', value: '1.0' },
    { name: 'os', value: 'linux' },
    { name: 'arch', value: 'amd64' },
  ],
  app: { exec: ['/bin/app', '--x'], user: '0', group: '0' },
};

test('manifest: a valid one parses', () => {
  const m = parseImageManifest(JSON.stringify(good));
  assert.equal(m.name, 'example.com/app');
  checkOsArch(m);
});

test('manifest: invalid ones name the problem', () => {
  const bad = (patch: object, re: RegExp) => assert.throws(() => parseImageManifest(JSON.stringify({ ...good, ...patch })), re);
  bad({ acKind: 'PodManifest' }, /acKind/);
  bad({ name: 'Example.com/App' }, /name/);
  bad({ app: { exec: ['bin/app'], user: '0', group: '0' } }, /absolute/);
  bad({ acVersion: 'one' }, /acVersion/);
  bad({ labels: [{ name: 'os', value: 'linux' }, { name: 'os', value: 'linux' }] }, /duplicate label/);
  bad({ labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: 'sparc' }] }, /bad arch/);
  assert.throws(() => parseImageManifest('{not json'), /not valid JSON/);
});

test('manifest: os/arch must be this host', () => {
  const m = parseImageManifest(JSON.stringify({ ...good, labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: 'aarch64' }] }));
  if (process.arch === 'x64') assert.throws(() => checkOsArch(m), /is for linux\/aarch64/);
  const none = parseImageManifest(JSON.stringify({ ...good, labels: [] }));
  assert.throws(() => checkOsArch(none), /missing os label/);
});

test('image IDs', () => {
  const hex = 'a'.repeat(128);
  const key = keyFromDigest(hex);
  assert.equal(key, `sha512-${'a'.repeat(64)}`);
  assert.equal(formatId(key), `sha512-${'a'.repeat(32)}`);
  assert.equal(formatId(key, true), key);
  assert.equal(idPrefix('sha512-ab'), 'sha512-ab');
  assert.throws(() => idPrefix('sha512-a'), /at least 2 hex/);
});

test('references', () => {
  assert.deepEqual(parseAppcName('example.com/app:1.0,os=linux'), { name: 'example.com/app', labels: [{ name: 'version', value: '1.0' }, { name: 'os', value: 'linux' }] });
  assert.equal(parseImageRef('sha512-abcd').kind, 'id');
  assert.equal(parseImageRef('./x.aci').kind, 'file');
  assert.equal(parseImageRef('/abs/x').kind, 'file');
  assert.equal(parseImageRef('file:///x.aci').kind, 'file');
  assert.equal(parseImageRef('https://h/x.aci').kind, 'url');
  assert.equal(parseImageRef('docker://busybox').kind, 'docker');
  assert.equal(parseImageRef('example.com/app').kind, 'name');
  assert.throws(() => parseImageRef('Bad_Name'), /AC Identifier/);
  assert.throws(() => parseImageRef('ftp://x/y'), /unsupported image transport/);
});

test('discovery: meta tags and templates', () => {
  const html = `<html><head>
    <meta name="ac-discovery" content="example.com https://example.com/{name}-{version}-{os}-{arch}.{ext}">
    <meta name='ac-discovery-pubkeys' content='example.com https://example.com/pubkeys.gpg'>
    <meta name="other" content="x y"></head></html>`;
  const t = parseMetaTags(html);
  assert.deepEqual(t.discovery, [{ prefix: 'example.com', value: 'https://example.com/{name}-{version}-{os}-{arch}.{ext}' }]);
  assert.deepEqual(t.pubkeys, [{ prefix: 'example.com', value: 'https://example.com/pubkeys.gpg' }]);
  assert.equal(renderTemplate('https://h/{name}-{version}.{ext}', { name: 'a/b', version: '1', ext: 'aci' }), 'https://h/a/b-1.aci');
  assert.equal(renderTemplate('https://h/{name}-{channel}.{ext}', { name: 'a', ext: 'aci' }), undefined);
});

test('compression magic and cache control', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
  assert.equal(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
  assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(detectCompression(Buffer.from('manifest')), 'none');
  assert.equal(parseMaxAge('public, max-age=600'), 600);
  assert.equal(parseMaxAge('no-cache'), 0);
  assert.equal(parseMaxAge(undefined), null);
});

test('tar paths: normalization and escapes', () => {
  assert.equal(normalizeEntryName('./rootfs/bin/'), 'rootfs/bin');
  assert.equal(normalizeEntryName('.'), '');
  assert.throws(() => normalizeEntryName('/etc/passwd'), /absolute/);
  assert.throws(() => normalizeEntryName('rootfs/../../x'), /escapes/);
  // the fast path (names needing no rewriting) and what must leave it
  assert.equal(normalizeEntryName('usr/share/doc/'), 'usr/share/doc');
  assert.equal(normalizeEntryName('a/.b/...'), 'a/.b/...');
  assert.equal(normalizeEntryName('a//b'), 'a/b');
  assert.equal(normalizeEntryName('a/./b/.'), 'a/b');
  assert.equal(normalizeEntryName('a//'), 'a');
  assert.throws(() => normalizeEntryName('a/..'), /escapes/);
  assert.throws(() => normalizeEntryName('../a/'), /escapes/);
  assert.throws(() => normalizeEntryName('//etc'), /absolute/);
  assert.equal(symlinkStaysInside('bin/sh', 'busybox'), true);
  assert.equal(symlinkStaysInside('bin/sh', '/bin/busybox'), true);
  assert.equal(symlinkStaysInside('usr/bin/env', '../../bin/busybox'), true);
  assert.equal(symlinkStaysInside('x', '../../etc'), false);
  assert.deepEqual(ancestors('a/b/c'), ['a', 'a/b']);
});
