// A throwaway OpenPGP key in its own GNUPGHOME, for signing test images.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestKey {
  home: string;
  /** 40 hex, lower case (rkt names trust store files by it). */
  fingerprint: string;
  /** Armored public key file. */
  publicKeyPath: string;
  publicKey: string;
  uid: string;
  /** Writes `file.asc` (detached, armored) and returns its path. */
  sign(file: string, out?: string): string;
  cleanup(): void;
}

/** Makes a fresh signing key (RSA 2048 by default; about 0.2 s). */
export function makeKey(opts: { uid?: string; algo?: string; dir?: string } = {}): TestKey {
  const uid = opts.uid ?? 'rkt test <test@example.com>';
  // Short path: gpg-agent's socket path must fit in sun_path.
  const home = mkdtempSync(join(tmpdir(), 'rkt-gpg-'));
  const env = { ...process.env, GNUPGHOME: home };
  const gpg = (args: string[], input?: string): string =>
    execFileSync('gpg', ['--batch', '--quiet', '--no-tty', ...args], { env, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    gpg(['--passphrase', '', '--quick-gen-key', uid, opts.algo ?? 'rsa2048', 'sign', 'never']);
    const colons = gpg(['--with-colons', '--list-keys', uid]);
    const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1];
    if (!fpr) throw new Error(`no fingerprint in gpg output:\n${colons}`);
    const publicKey = gpg(['--armor', '--export', fpr]);
    const publicKeyPath = join(opts.dir ?? home, `pubkey-${fpr.slice(-16).toLowerCase()}.asc`);
    writeFileSync(publicKeyPath, publicKey);
    return {
      home,
      fingerprint: fpr.toLowerCase(),
      publicKeyPath,
      publicKey,
      uid,
      sign(file: string, out = `${file}.asc`): string {
        gpg(['--yes', '--local-user', fpr, '--armor', '--detach-sign', '--output', out, file]);
        return out;
      },
      cleanup(): void {
        spawnSync('gpgconf', ['--kill', 'all'], { env, stdio: 'ignore', timeout: 10_000 });
        rmSync(home, { recursive: true, force: true });
      },
    };
  } catch (e) {
    spawnSync('gpgconf', ['--kill', 'all'], { env, stdio: 'ignore', timeout: 10_000 });
    rmSync(home, { recursive: true, force: true });
    throw e;
  }
}
