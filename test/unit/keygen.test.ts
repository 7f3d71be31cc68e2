import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils } from 'ssh2';
import { generateEd25519, runKeygen } from '../../src/cli/keygen';

describe('dpu-overlay keygen', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'keygen-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = <T>(fn: () => T): T => {
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      return fn();
    } finally {
      process.stdout.write = write;
    }
  };

  it('writes an OpenSSH Ed25519 key that ssh2 and ssh-keygen read, 0600, with its public key and fingerprint', () => {
    const key = generateEd25519('dpu-overlay@node1');
    const parsed = utils.parseKey(key.privatePem);
    expect(parsed).not.toBeInstanceOf(Error);
    expect((parsed as { type: string }).type).toBe('ssh-ed25519');
    const path = join(dir, 'id_ed25519');
    expect(quiet(() => runKeygen([path]))).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const derived = spawnSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' });
    if (derived.status === null) return; // no ssh-keygen on this machine
    expect(derived.stdout.trim().split(' ').slice(0, 2)).toEqual(readFileSync(`${path}.pub`, 'utf8').trim().split(' ').slice(0, 2));
    const fp = spawnSync('ssh-keygen', ['-l', '-f', `${path}.pub`], { encoding: 'utf8' }).stdout;
    expect(fp).toContain(key.fingerprint.slice(0, 7));
  });

  it('keeps an existing key; --rotate writes PATH.new beside it', () => {
    const path = join(dir, 'id_ed25519');
    writeFileSync(path, 'existing', { mode: 0o600 });
    expect(quiet(() => runKeygen([path]))).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('existing');
    expect(quiet(() => runKeygen(['--rotate', path]))).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('existing');
    expect(readFileSync(`${path}.new`, 'utf8')).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(statSync(`${path}.new`).mode & 0o777).toBe(0o600);
  });

  it('two nodes never get the same key', () => {
    expect(generateEd25519('a').publicLine).not.toBe(generateEd25519('a').publicLine);
  });
});
