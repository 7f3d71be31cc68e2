import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { KernelError } from '../../src/kernel/errors';
import { NetlinkLinkOps } from '../../src/kernel/rtnetlink';
import type { RtnetlinkAddon } from '../../src/kernel/rtnetlink-addon';
import { loadFromSea, loadRtnetlink } from '../../src/kernel/rtnetlink-addon';
import { encodeMessage, ifinfomsg, RTM_NEWLINK, splitMessages, stringAttr, u32Attr } from '../../src/kernel/rtnetlink-message';
import { layerErrorToCni } from '../../src/plugin/layer-errors';
import { ScriptedRunner } from './helpers/scripted-runner';

/** The kernel's answer to request: an NLMSG_ERROR with errno (0: an ACK), optionally with an extended-ACK text. */
function ack(request: Buffer, errno = 0, extack?: string): Buffer {
  const body = Buffer.alloc(4 + 16);
  body.writeInt32LE(-errno, 0);
  request.copy(body, 4, 0, 16);
  return encodeMessage(2, 0x100 | (extack ? 0x200 : 0), request.readUInt32LE(8), body, extack ? [stringAttr(1, extack)] : []);
}

function newlink(request: Buffer, name: string, index: number): Buffer {
  return Buffer.concat([encodeMessage(RTM_NEWLINK, 0, request.readUInt32LE(8), ifinfomsg({ index, flags: 1 }), [stringAttr(3, name), u32Attr(4, 1500)]), ack(request)]);
}

/** An addon whose kernel is answer(request); records the requests. */
function fakeAddon(answer: (req: Buffer, n: number) => Buffer): RtnetlinkAddon & { requests: Buffer[]; opened: number[]; closed: number } {
  const fake = {
    requests: [] as Buffer[],
    opened: [] as number[],
    closed: 0,
    open: (ns: number) => (fake.opened.push(ns), 99),
    close: () => void fake.closed++,
    transact: async (_fd: number, req: Buffer) => (fake.requests.push(req), answer(req, fake.requests.length)),
    writeInNetns: (_ns: number, path: string) => (path.includes('ipv6') ? 2 : 0),
    strerror: (e: number) => ({ 2: 'No such file or directory', 17: 'File exists', 19: 'No such device', 110: 'Connection timed out' })[e] ?? `errno ${e}`,
  };
  return fake;
}

const SETUP = { from: 'dpuo0001', ifname: 'eth0', mac: '02:00:00:00:00:01', mtu: 1400, ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };

describe('NetlinkLinkOps', () => {
  it('configureInterface: looks the link up, renames, MAC, MTU, address, up, route, reads it back; one socket in the namespace, closed', async () => {
    const nl = fakeAddon((req, n) => (n === 1 || n === 8 ? newlink(req, n === 1 ? 'dpuo0001' : 'eth0', 7) : ack(req)));
    const shown = await new NetlinkLinkOps(new ScriptedRunner(), nl).configureInterface('/proc/self/ns/net', SETUP);
    expect(shown).toMatchObject({ name: 'eth0', ifindex: 7 });
    expect(nl.requests.map((r) => r.readUInt16LE(4))).toEqual([18, 16, 16, 16, 20, 16, 24, 18]);
    expect(nl.opened).toHaveLength(1);
    expect(nl.opened[0]).toBeGreaterThanOrEqual(0);
    expect(nl.closed).toBe(1);
  });

  it('a rename onto a used name is an exists KernelError naming the step, with the kernel\'s extended ACK; the socket is closed', async () => {
    const nl = fakeAddon((req, n) => (n === 1 ? newlink(req, 'dpuo0001', 7) : ack(req, 17, 'some text')));
    const err = await new NetlinkLinkOps(new ScriptedRunner(), nl).configureInterface('/proc/self/ns/net', SETUP).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(err).toMatchObject({ kind: 'exists', message: 'configuring the interface: renaming dpuo0001 to eth0 failed: File exists (some text)' });
    expect(nl.closed).toBe(1);
  });

  it('an address IPAM gave that is none is an invalid KernelError (mapped as the ip path\'s "Invalid argument"), sent nowhere', async () => {
    const nl = fakeAddon((req, n) => (n === 1 ? newlink(req, 'dpuo0001', 7) : ack(req)));
    const err = await new NetlinkLinkOps(new ScriptedRunner(), nl).configureInterface('/proc/self/ns/net', { ...SETUP, ips: [{ address: '10.0.0.300/24' }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/adding address 10\.0\.0\.300\/24 to eth0 failed: not an address/) });
    expect(layerErrorToCni(err)).toMatchObject({ code: (layerErrorToCni(new KernelError('invalid', 'x')) as { code: number }).code });
    expect(nl.requests.map((r) => r.readUInt16LE(4))).toEqual([18, 16, 16, 16]);
  });

  it('linkOf: no such device is undefined; a timeout from the addon is a timeout KernelError', async () => {
    const none = fakeAddon((req) => ack(req, 19));
    expect(await new NetlinkLinkOps(new ScriptedRunner(), none).linkOf('gone')).toBeUndefined();
    expect(none.opened).toEqual([-1]);
    const slow: RtnetlinkAddon = { ...fakeAddon((req) => ack(req)), transact: async () => { throw Object.assign(new Error('waiting for the kernel\'s netlink answer: Connection timed out'), { code: '110' }); } };
    await expect(new NetlinkLinkOps(new ScriptedRunner(), slow).linkOf('x')).rejects.toMatchObject({ kind: 'timeout', message: expect.stringMatching(/looking up link x failed: waiting/) });
  });

  it('a namespace path that does not exist is a not-found KernelError naming it; nothing is opened', async () => {
    const nl = fakeAddon((req) => ack(req));
    await expect(new NetlinkLinkOps(new ScriptedRunner(), nl).listLinkDevices('/run/netns/no-such-ns')).rejects.toMatchObject({ kind: 'not-found', message: expect.stringMatching(/cannot open network namespace \/run\/netns\/no-such-ns/) });
    expect(nl.opened).toEqual([]);
  });

  it('announceOnUp reports the sysctl that failed (IPv6 disabled) and never writes a path built from an unsafe name', async () => {
    const nl = fakeAddon((req) => ack(req));
    const links = new NetlinkLinkOps(new ScriptedRunner(), nl);
    expect(await links.announceOnUp('/proc/self/ns/net', 'dpuo0001')).toBe('/proc/sys/net/ipv6/conf/dpuo0001/ndisc_notify: No such file or directory');
    expect(await links.announceOnUp('/proc/self/ns/net', '..')).toMatch(/cannot be a \/proc\/sys path component/);
    expect(await links.announceOnUp('/proc/self/ns/net', 'a/b')).toMatch(/cannot be a \/proc\/sys path component/);
  });

  it('restoreInHost: down, rename, then MAC and MTU in one request', async () => {
    const nl = fakeAddon((req, n) => (n === 1 ? newlink(req, 'dpuo0002', 9) : ack(req)));
    await new NetlinkLinkOps(new ScriptedRunner(), nl).restoreInHost('dpuo0002', { name: 'ens1f0v1', mac: '02:00:00:00:00:09', mtu: 1500 });
    expect(nl.requests.map((r) => splitMessages(r)[0]?.type)).toEqual([18, 16, 16, 16]);
    expect(nl.opened).toEqual([-1]);
  });
});

describe('loadRtnetlink outside a SEA', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rtnl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('no addon built: a reason that says how to build it', () => {
    expect(loadRtnetlink('/nonexistent', dir)).toEqual({ reason: `${join(dir, 'rtnetlink.node')} does not exist: npm run build compiles it` });
  });

  it('a file whose hash is not the recorded one is not loaded', () => {
    writeFileSync(join(dir, 'rtnetlink.node'), 'not an addon');
    writeFileSync(join(dir, 'rtnetlink.node.sha256'), 'a'.repeat(64));
    expect(loadRtnetlink('/nonexistent', dir)).toEqual({ reason: expect.stringMatching(/has sha256 [0-9a-f]{64}, not the a{64} this executable was built with/) });
  });

  it('a file writable by others is not loaded, whatever its hash', () => {
    const file = join(dir, 'rtnetlink.node');
    writeFileSync(file, 'x');
    chmodSync(file, 0o666);
    writeFileSync(`${file}.sha256`, '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
    expect(readFileSync(file, 'utf8')).toBe('x');
    expect(loadRtnetlink('/nonexistent', dir)).toEqual({ reason: expect.stringMatching(/is writable by group or others/) });
  });
});

describe('loadFromSea: the addon file in the native directory', () => {
  const built = join(__dirname, '../../build/rtnetlink.node');
  const maybe = existsSync(built) ? it : it.skip;
  const uid = process.geteuid?.() ?? 0;
  let root: string;
  let dir: string;
  let bytes: Buffer;
  let sha: string;
  let assetReads: number;
  const sea = { getAsset: () => ((assetReads += 1), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer) };
  const fileIn = () => join(dir, `rtnetlink-${sha.slice(0, 16)}.node`);
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'rtnl-sea-'));
    dir = join(root, 'native');
    if (existsSync(built)) bytes = readFileSync(built);
    sha = existsSync(built) ? createHash('sha256').update(bytes).digest('hex') : '';
    assetReads = 0;
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  maybe('missing: the directory is made 0700, the file written 0500 from the asset and loaded', () => {
    const r = loadFromSea(sea, sha, dir, uid);
    expect(r).toEqual({ addon: expect.objectContaining({ open: expect.any(Function) }), path: fileIn() });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(fileIn()).mode & 0o777).toBe(0o500);
    expect(readdirSync(dir)).toEqual([basename(fileIn())]);
  });

  maybe('present and right: loaded without reading the asset or writing', () => {
    loadFromSea(sea, sha, dir, uid);
    const before = statSync(fileIn());
    assetReads = 0;
    expect(loadFromSea(sea, sha, dir, uid)).toEqual({ addon: expect.any(Object), path: fileIn() });
    expect(assetReads).toBe(0);
    expect(statSync(fileIn()).ino).toBe(before.ino);
  });

  maybe('present with another hash: replaced from the asset, and the caller is told what was there', () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(fileIn(), 'not the addon', { mode: 0o500 });
    expect(loadFromSea(sea, sha, dir, uid)).toEqual({ addon: expect.any(Object), path: fileIn(), replaced: expect.stringMatching(/has sha256 [0-9a-f]{64}, not the/) });
    expect(createHash('sha256').update(readFileSync(fileIn())).digest('hex')).toBe(sha);
  });

  maybe('a symlink in its place is replaced, never followed', () => {
    mkdirSync(dir, { mode: 0o700 });
    const target = join(root, 'elsewhere');
    writeFileSync(target, 'x');
    symlinkSync(target, fileIn());
    expect(loadFromSea(sea, sha, dir, uid)).toEqual(expect.objectContaining({ path: fileIn(), replaced: expect.stringContaining('cannot be opened (ELOOP)') }));
    expect(readFileSync(target, 'utf8')).toBe('x');
    expect(lstatSync(fileIn()).isFile()).toBe(true);
  });

  maybe('a directory in its place cannot be replaced: a reason, nothing loaded, no temporary file left', () => {
    mkdirSync(fileIn(), { recursive: true });
    chmodSync(dir, 0o700);
    expect(loadFromSea(sea, sha, dir, uid)).toEqual({ reason: expect.any(String) });
    expect(readdirSync(dir)).toEqual([basename(fileIn())]);
  });

  maybe('a native directory others can read or write is refused before anything is read from it', () => {
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    expect(loadFromSea(sea, sha, dir, uid)).toEqual({ reason: expect.stringMatching(/has mode 755, not 0700: make it a directory owned by uid \d+ with mode 0700, or remove it/) });
    expect(readdirSync(dir)).toEqual([]);
  });

  maybe('an asset whose bytes do not match the recorded hash is never written', () => {
    expect(loadFromSea(sea, 'b'.repeat(64), dir, uid)).toEqual({ reason: expect.stringMatching(/asset does not match the hash recorded at build time/) });
    expect(readdirSync(dir)).toEqual([]);
  });
});
