import { createHmac } from 'node:crypto';

/**
 * OpenSSH known_hosts lookup (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT", hostfile.c and match.c of OpenSSH):
 * comma-separated patterns with * and ?, !negation, [host]:port for ports other than 22, hashed |1|salt|hash
 * names, @revoked and @cert-authority markers. Certificates are not supported: a @cert-authority line never
 * grants a plain key. A line that could restrict the host's keys but cannot be evaluated (a @revoked line we
 * cannot read, an unknown marker) makes the whole file unusable instead of being skipped.
 */

export interface KnownKey {
  type: string;
  blob: Buffer;
}

export class KnownHostsLineError extends Error {
  constructor(
    readonly line: number,
    why: string,
  ) {
    super(`line ${line}: ${why}`);
  }
}

/** The name OpenSSH looks up: the host alone on port 22, else [host]:port; lower case like ssh(1). */
export function lookupName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** match.c match_pattern: * is any run of characters (also none), ? exactly one, everything else itself. */
export function matchPattern(s: string, pattern: string): boolean {
  let si = 0;
  let pi = 0;
  let star = -1;
  let starS = 0;
  while (si < s.length) {
    const p = pattern[pi];
    if (p === '*') {
      star = pi++;
      starS = si;
    } else if (p !== undefined && (p === '?' || p === s[si])) {
      pi++;
      si++;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

export type ListMatch = 'match' | 'no-match' | 'negated';

/** match.c match_pattern_list (lower-cased): any matching !pattern wins over every positive match. */
export function matchPatternList(s: string, list: string): ListMatch {
  let positive = false;
  for (const raw of list.toLowerCase().split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!matchPattern(s, pattern)) continue;
    if (negated) return 'negated';
    positive = true;
  }
  return positive ? 'match' : 'no-match';
}

const SHA1_LEN = 20;

/** hostfile.c: a hashed name is |1|base64(20-byte salt)|base64(HMAC-SHA1(salt, name)); undefined if malformed. */
function matchesHashed(field: string, name: string): boolean | undefined {
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return undefined;
  const [, , salt64, hash64] = parts as [string, string, string, string];
  const salt = Buffer.from(salt64, 'base64');
  const hash = Buffer.from(hash64, 'base64');
  if (salt.length !== SHA1_LEN || hash.length !== SHA1_LEN || salt.toString('base64') !== salt64) return undefined;
  return createHmac('sha1', salt).update(name).digest().equals(hash);
}

/** undefined: the host field cannot be evaluated. */
function hostFieldMatches(field: string, name: string): boolean | undefined {
  if (field.startsWith('|')) return matchesHashed(field, name);
  return matchPatternList(name, field) === 'match';
}

/** The key blob of "type base64", if the base64 is well formed and the blob names that type. */
function parseKey(type: string | undefined, b64: string | undefined): KnownKey | undefined {
  if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const blob = Buffer.from(b64, 'base64');
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== type) return undefined;
  return { type, blob };
}

/**
 * Keys listed for host:port, without any key @revoked for it (OpenSSH refuses a revoked key even if it is
 * also listed plainly). Throws KnownHostsLineError for a line that might restrict this host but cannot be read.
 */
export function knownKeysFor(content: string, host: string, port: number): KnownKey[] {
  const name = lookupName(host, port);
  const keys: KnownKey[] = [];
  const revoked: Buffer[] = [];
  content.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    const marker = line.startsWith('@') ? fields.shift() : undefined;
    const [hosts, type, b64] = fields;
    if (marker !== undefined && marker !== '@revoked' && marker !== '@cert-authority') {
      throw new KnownHostsLineError(i + 1, `unknown marker ${marker.slice(0, 40)} (only @revoked and @cert-authority exist)`);
    }
    if (!hosts) {
      if (marker === '@revoked') throw new KnownHostsLineError(i + 1, '@revoked without host names');
      return;
    }
    const matches = hostFieldMatches(hosts, name);
    if (marker === '@revoked') {
      const key = parseKey(type, b64);
      if (matches === undefined || !key) throw new KnownHostsLineError(i + 1, `@revoked line cannot be read (${matches === undefined ? 'malformed hashed host name' : 'malformed key'})`);
      if (matches) revoked.push(key.blob);
      return;
    }
    // @cert-authority keys only sign certificates, which the plugin does not accept; unreadable plain lines grant nothing.
    if (marker === '@cert-authority' || !matches) return;
    const key = parseKey(type, b64);
    if (key) keys.push(key);
  });
  return keys.filter((k) => !revoked.some((r) => r.equals(k.blob)));
}
