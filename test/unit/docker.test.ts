// Pure parts of Docker/OCI support: references, auth challenges, manifests,
// platform choice, chain IDs, conversion to appc, tar headers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseWwwAuthenticate, parseTokenResponse, tokenUrl } from '../../src/image/docker/auth.ts';
import { convertConfig, convertPorts, convertVolumes, dockerArgs, dockerExec, splitUser, appcArch } from '../../src/image/docker/convert.ts';
import { chainIds, parseConfig, parseManifest, selectPlatform } from '../../src/image/docker/manifest.ts';
import { parseDockerRef, resolveLocalSpec, sanitizeIdentifier, sanitizeName, splitTransport } from '../../src/image/docker/reference.ts';
import { parseHeader } from '../../src/image/docker/tarindex.ts';
import { parseImageRef } from '../../src/image/ref.ts';

const D = `sha256:${'a'.repeat(64)}`;
const E = `sha256:${'b'.repeat(64)}`;

describe('docker references', () => {
  test("Docker's defaults", () => {
    assert.deepEqual(parseDockerRef('busybox'), { registry: 'registry-1.docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined });
    assert.deepEqual(parseDockerRef('user/app:1.2'), { registry: 'registry-1.docker.io', repository: 'user/app', tag: '1.2', digest: undefined });
    assert.deepEqual(parseDockerRef('docker.io/nginx'), { registry: 'registry-1.docker.io', repository: 'library/nginx', tag: 'latest', digest: undefined });
    assert.deepEqual(parseDockerRef('127.0.0.1:5000/busybox'), { registry: '127.0.0.1:5000', repository: 'busybox', tag: 'latest', digest: undefined });
    assert.deepEqual(parseDockerRef('localhost/a/b:t'), { registry: 'localhost', repository: 'a/b', tag: 't', digest: undefined });
    assert.deepEqual(parseDockerRef(`quay.io/x/y@${D}`), { registry: 'quay.io', repository: 'x/y', tag: undefined, digest: D });
    assert.deepEqual(parseDockerRef(`r.io:443/x:v1@${D}`), { registry: 'r.io:443', repository: 'x', tag: 'v1', digest: D });
  });
  test('bad references', () => {
    for (const bad of ['', 'UPPER', 'a//b', 'a:b:c', 'x@sha256:123', 'r.io/', 'a:-bad']) assert.throws(() => parseDockerRef(bad), /invalid docker image reference/, bad);
  });
  test('transports', () => {
    assert.deepEqual(splitTransport('docker://busybox'), { transport: 'docker', rest: 'busybox' });
    assert.deepEqual(splitTransport('docker:busybox'), { transport: 'docker', rest: 'busybox' });
    assert.deepEqual(splitTransport('docker-archive:/x.tar'), { transport: 'docker-archive', rest: '/x.tar' });
    assert.deepEqual(splitTransport('oci:/d:tag'), { transport: 'oci', rest: '/d:tag' });
    assert.deepEqual(splitTransport('oci-archive:/a.tar'), { transport: 'oci-archive', rest: '/a.tar' });
    assert.equal(splitTransport('example.com/app:1'), undefined);
    const r = parseImageRef('docker://busybox:1');
    assert.equal(r.kind, 'docker');
    assert.throws(() => parseImageRef('docker://Bad'), /invalid docker image reference/);
  });
  test('local PATH[:REF]', () => {
    const exists = (p: string) => ['/a/dir', '/a/x:y'].includes(p);
    assert.deepEqual(resolveLocalSpec('/a/dir', exists), { path: '/a/dir', ref: undefined });
    assert.deepEqual(resolveLocalSpec('/a/dir:latest', exists), { path: '/a/dir', ref: 'latest' });
    assert.deepEqual(resolveLocalSpec('/a/x:y:tag', exists), { path: '/a/x:y', ref: 'tag' });
  });
  test('sanitizing', () => {
    assert.equal(sanitizeIdentifier('127.0.0.1:5000/library/busybox'), '127.0.0.1-5000/library/busybox');
    assert.equal(sanitizeIdentifier('a__b'), 'a_b');
    assert.equal(sanitizeName('/var/lib/Data_x'), 'var-lib-data-x');
  });
});

describe('auth challenges', () => {
  test('Bearer with quoted params, several challenges', () => {
    const c = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull", Basic realm="x"');
    assert.equal(c.length, 2);
    assert.deepEqual(c[0], { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } });
    assert.equal(c[1]?.scheme, 'basic');
    const u = tokenUrl(c[0]!, 'library/busybox');
    assert.equal(u.searchParams.get('service'), 'registry.docker.io');
    assert.equal(u.searchParams.get('scope'), 'repository:library/busybox:pull');
    assert.equal(tokenUrl({ scheme: 'bearer', params: { realm: 'http://t/tok' } }, 'a/b').searchParams.get('scope'), 'repository:a/b:pull');
  });
  test('token responses', () => {
    assert.equal(parseTokenResponse('{"token":"t1"}'), 't1');
    assert.equal(parseTokenResponse('{"access_token":"t2"}'), 't2');
    assert.throws(() => parseTokenResponse('{}'));
  });
});

describe('manifests', () => {
  const m = (o: object) => Buffer.from(JSON.stringify(o));
  test('OCI and Docker manifests, layer types', () => {
    const r = parseManifest(m({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D, size: 3 }, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: E, size: 9 }, { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: E, size: 9 }, { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: E, size: 9 }] }));
    assert.equal(r.kind, 'manifest');
    if (r.kind === 'manifest') assert.deepEqual(r.manifest.layers.map((l) => l.compression), ['gzip', 'zstd', 'none']);
    assert.throws(() => parseManifest(m({ schemaVersion: 2, config: { digest: D, size: 1 }, layers: [{ mediaType: 'application/x-foo', digest: E, size: 1 }] })), /unsupported layer media type/);
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,')), /malformed image manifest/);
    assert.throws(() => parseManifest(m({ schemaVersion: 1 })), /schema 1/);
    assert.throws(() => parseManifest(m({ schemaVersion: 2, mediaType: 'application/x-foo' })), /unsupported manifest media type/);
    assert.throws(() => parseManifest(m({ schemaVersion: 2, config: { digest: 'md5:x', size: 1 }, layers: [] })), /digest/);
  });
  test('platform choice', () => {
    const idx = { mediaType: 'x', manifests: [
      { mediaType: '', digest: D, size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { mediaType: '', digest: E, size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { mediaType: '', digest: D, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    ] };
    assert.equal(selectPlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest, E);
    assert.equal(selectPlatform(idx, { os: 'linux', architecture: 'amd64' }).digest, D);
    assert.throws(() => selectPlatform(idx, { os: 'linux', architecture: 's390x' }), /no image for this host's platform linux\/s390x.*linux\/amd64/);
  });
  test('chain IDs and configs', () => {
    const ch = chainIds([D, E]);
    assert.equal(ch[0], D);
    assert.match(ch[1] ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.throws(() => parseConfig(Buffer.from('{}')), /diff_ids/);
  });
});

describe('conversion to appc', () => {
  test('ports, volumes, user', () => {
    assert.deepEqual(convertPorts({ '443/tcp': {}, '53/udp': {}, '80': {}, '8000-8002/tcp': {} }), [
      { name: '53-udp', protocol: 'udp', port: 53 }, { name: '80-tcp', protocol: 'tcp', port: 80 }, { name: '443-tcp', protocol: 'tcp', port: 443 }, { name: '8000-tcp', protocol: 'tcp', port: 8000, count: 3 },
    ]);
    assert.deepEqual(convertVolumes({ '/var/lib/data': {}, '/data': {}, '/Data': {} }), [{ name: 'volume-data', path: '/Data' }, { name: 'volume-data-1', path: '/data' }, { name: 'volume-var-lib-data', path: '/var/lib/data' }]);
    assert.deepEqual(splitUser(''), { user: '0', group: '0' });
    assert.deepEqual(splitUser('nginx'), { user: 'nginx', group: '' });
    assert.deepEqual(splitUser('1000:1001'), { user: '1000', group: '1001' });
    assert.equal(appcArch('arm64', 'v8'), 'aarch64');
    assert.equal(appcArch('arm', 'v6'), 'armv6l');
  });
  test('manifest, annotations and Docker-style args', () => {
    const m = convertConfig({
      config: { os: 'linux', architecture: 'amd64', config: { Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'], Env: ['PATH=/usr/bin', 'BAD.NAME=x', 'NOEQ'], WorkingDir: 'srv', Labels: { a: 'b' } }, rootfs: { diff_ids: [D] } },
      name: 'registry-1.docker.io/library/nginx', version: 'latest', registry: 'registry-1.docker.io', repository: 'library/nginx', originalName: 'registry-1.docker.io/library/nginx:latest', configDigest: D, manifestDigest: E, topLayer: { name: 'l', key: `sha512-${'c'.repeat(64)}` },
    });
    assert.deepEqual(m.app?.exec, ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(m.app?.environment, [{ name: 'PATH', value: '/usr/bin' }]);
    assert.equal(m.app?.workingDirectory, '/srv');
    assert.deepEqual(m.labels, [{ name: 'version', value: 'latest' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }]);
    const d = dockerExec(m);
    assert.deepEqual(d, { entrypoint: ['/docker-entrypoint.sh'], cmd: ['nginx', '-g', 'daemon off;'] });
    assert.deepEqual(dockerArgs(d!, undefined, undefined), ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(dockerArgs(d!, undefined, ['sh']), ['/docker-entrypoint.sh', 'sh']);
    assert.deepEqual(dockerArgs(d!, '/bin/true', undefined), ['/bin/true']);
    assert.deepEqual(dockerArgs(d!, '/bin/sleep', ['5']), ['/bin/sleep', '5']);
    assert.equal(dockerExec({ annotations: [] }), undefined);
  });
});

describe('tar headers', () => {
  test('checksums and sizes', () => {
    const h = Buffer.alloc(512);
    h.write('manifest.json', 0);
    h.write('0000644\0', 100);
    h.write('00000000012\0', 124);
    h.write('0', 156);
    h.write('ustar\u000000', 257);
    h.fill(32, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    assert.deepEqual(parseHeader(h), { name: 'manifest.json', size: 10, type: '0' });
    h[0] = 0x41;
    assert.throws(() => parseHeader(h), /checksum/);
    assert.equal(parseHeader(Buffer.alloc(512)), undefined);
  });
});
