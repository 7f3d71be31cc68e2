import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { closeSync, constants, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const KEYGEN_USAGE = `usage: dpu-overlay keygen [--rotate] [--comment TEXT] PATH
Generates this node's DPU key on this node: an Ed25519 private key at PATH (0600, OpenSSH format, written only
if PATH does not exist) and its public key at PATH.pub; prints the public key line. Each node has its own key:
never copy one key to several nodes. Authorise it on the node's DPU with:  ./install.sh --dpu --authorize-key PATH.pub
  --rotate        write a new key to PATH.new (and PATH.new.pub) even if PATH exists; switch with
                  "mv PATH.new PATH" once the DPU accepts it (docs/kubernetes.md "Rotating a node's key")
  --comment TEXT  the public key's comment (default dpu-overlay@<hostname>)
`;

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export interface GeneratedKey {
  privatePem: string;
  publicLine: string;
  fingerprint: string;
}

/** A new Ed25519 key pair in OpenSSH's own formats (openssh-key-v1, unencrypted; "ssh-ed25519 AAAA... comment"). */
export function generateEd25519(comment: string): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const blob = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), uint32(1), sshString(publicBlob), sshString(priv)]);
  const b64 = blob.toString('base64').match(/.{1,70}/g)?.join('\n') ?? '';
  return {
    privatePem: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicLine: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
    fingerprint: `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`,
  };
}

/** Writes data to path with mode, only if path does not exist (a link from a private temporary file: never half-written). */
function writeNew(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } finally {
    unlinkSync(tmp);
  }
}

export function runKeygen(argv: readonly string[]): number {
  let rotate = false;
  let comment = `dpu-overlay@${process.env.NODE_NAME || hostname()}`;
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h' || a === 'help') {
      process.stdout.write(KEYGEN_USAGE);
      return 0;
    }
    if (a === '--rotate') rotate = true;
    else if (a === '--comment' && argv[i + 1] !== undefined) comment = argv[++i] as string;
    else if (!a.startsWith('--') && path === undefined) path = a;
    else {
      process.stderr.write(`dpu-overlay keygen: unexpected ${a}\n${KEYGEN_USAGE}`);
      return 2;
    }
  }
  if (!path?.startsWith('/') || /\s/.test(comment)) {
    process.stderr.write(`dpu-overlay keygen: PATH must be an absolute path and the comment one word\n${KEYGEN_USAGE}`);
    return 2;
  }
  const target = rotate ? `${path}.new` : path;
  try {
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    if (existsSync(target) && !rotate) {
      const pub = existsSync(`${path}.pub`) ? readFileSync(`${path}.pub`, 'utf8').trim() : '(no .pub next to it)';
      process.stdout.write(`${path} exists; kept. Public key: ${pub}\n`);
      return 0;
    }
    if (rotate && existsSync(target)) {
      renameSync(target, `${target}.old`);
      if (existsSync(`${target}.pub`)) renameSync(`${target}.pub`, `${target}.old.pub`);
    }
    const key = generateEd25519(comment);
    writeNew(target, key.privatePem, 0o600);
    if (existsSync(`${target}.pub`)) unlinkSync(`${target}.pub`);
    writeNew(`${target}.pub`, key.publicLine + '\n', 0o644);
    process.stdout.write(`wrote ${target} (0600) and ${target}.pub, fingerprint ${key.fingerprint}\n${key.publicLine}\non the DPU: ./install.sh --dpu --authorize-key ${target}.pub\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`dpu-overlay keygen: ${(err as Error).message}\n`);
    return 1;
  }
}
