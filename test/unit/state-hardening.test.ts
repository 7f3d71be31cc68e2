import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storeErrorOf } from './helpers/errors';
import { selfIdentity } from '../../src/kernel/process';
import { type Attachment, attachmentFileName, StateStore } from '../../src/store/attachments';
import { createLogger } from '../../src/log';
import { Bed, PF0_VFS } from './helpers/bed';
import { DEAD_OWNER } from './helpers/dead-owner';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

let nets: TestNetns[] = [];
beforeAll(async () => {
  nets = await Promise.all([createNetns(), createNetns(), createNetns(), createNetns(), createNetns()]);
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

const bed = () => new Bed(nets.map((n) => n.path));
const gcConfig = (b: Bed, valid: Array<{ containerID: string; ifname: string }> = []) => b.config({ 'cni.dev/valid-attachments': valid });
const gcEnv = { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined };

async function addedRecord(b: Bed, containerId = 'c1'): Promise<Attachment> {
  const out = await b.run('ADD', { containerId });
  expect(out.exitCode).toBe(0);
  return new StateStore(b.stateDir).loadAttachment(containerId, 'net1') as Attachment;
}

function plant(b: Bed, att: Attachment, patch: Record<string, unknown>): string {
  const file = join(b.stateDir, 'attachments', attachmentFileName(att.containerId, att.ifname));
  writeFileSync(file, JSON.stringify({ ...att, ...patch }));
  return file;
}

describe('stateDir ownership and modes', () => {
  it('a stateDir owned by another uid is code 7 naming stateDir and the fix', () => {
    const s = new StateStore(join(tmpDir(), 'state'), { expectedUid: 4242 });
    const caught = storeErrorOf(() => s.ensure());
    expect(caught.code).toBe(7);
    expect(caught.message).toMatch(/stateDir: .* is owned by uid \d+, not 4242.*chown -R 4242 .*chmod 700/);
  });

  it('a group/other-writable stateDir (or subdir) refuses every command before any host work', async () => {
    const b = bed();
    await addedRecord(b);
    chmodSync(join(b.stateDir, 'attachments'), 0o777);
    b.host.clearCalls();
    for (const command of ['ADD', 'DEL', 'CHECK']) {
      const out = await b.run(command, { containerId: 'c2', config: b.config({ prevResult: { cniVersion: '1.1.0' } }) });
      expect(out.json).toMatchObject({ code: 7 });
      expect(String(out.json?.msg)).toMatch(/stateDir: .*attachments is writable by group or others .*chmod 700/);
    }
    expect((await b.run('GC', { env: gcEnv, config: gcConfig(b) })).json).toMatchObject({ code: 7 });
    expect(b.host.calls).toEqual([]);
  });

  it('a symlinked stateDir is refused', () => {
    const real = join(tmpDir(), 'real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(tmpDir(), 'link');
    symlinkSync(real, link);
    expect(() => new StateStore(link).ensure()).toThrow(/is a symbolic link/);
  });
});

describe('records are validated on read and never acted on when invalid', () => {
  it('a planted record with ipamType "../../tmp/x": DEL is code 5 naming the file; nothing runs, the VF is not touched', async () => {
    const b = bed();
    const att = await addedRecord(b);
    const marker = join(tmpDir(), 'ran');
    const evil = join(b.root, 'x');
    writeFileSync(evil, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    const file = plant(b, att, { ipamType: `../..${evil}` });
    b.host.clearCalls();
    const out = await b.run('DEL');
    expect(out.json).toMatchObject({ code: 5 });
    expect(String(out.json?.msg)).toContain(file);
    expect(String(out.json?.msg)).toContain('ipamType');
    expect(b.host.calls).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(file)).toBe(true);
  });

  it.each([
    ['cniPath with a relative entry', { cniPath: ['bin'] }, 'cniPath'],
    ['a netdev name with a space', { vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'eth0 up', originalMac: '02:00:00:00:00:01', originalMtu: 1500 } }, 'vf.originalName'],
    ['a PCI address with a path', { vf: { pci: '../../x', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: '02:00:00:00:00:01', originalMtu: 1500 } }, 'vf.pci'],
    ['a relative netns', { netns: 'proc/1/ns/net' }, 'netns'],
    ['a vni out of range', { vni: 1 << 24 }, 'vni'],
    ['a record for another container', { containerId: 'other' }, 'holds other/net1'],
  ])('%s: GC skips it with a warning and keeps it and its claim; DEL reports it', async (_label, patch, field) => {
    const b = bed();
    const att = await addedRecord(b);
    const file = plant(b, att, patch);
    b.ipam.resetLog();
    const gc = await b.run('GC', { env: gcEnv, config: gcConfig(b) });
    expect(gc.exitCode).toBe(0);
    expect(existsSync(file)).toBe(true);
    expect(new StateStore(b.stateDir).listAllocations()).toEqual([att.vf.pci]);
    expect(b.ipam.commands()).not.toContain('DEL'); // GC itself is forwarded to the IPAM plugin; the record's IPAM release is not run
    const del = await b.run('DEL');
    expect(del.json).toMatchObject({ code: 5 });
    expect(String(del.json?.msg)).toContain(field);
  });

  it('an invalid allocation file is never freed by GC nor taken by ADD', async () => {
    const b = bed();
    const s = new StateStore(b.stateDir);
    s.ensure();
    for (const vf of PF0_VFS) writeFileSync(join(s.allocationsDir, vf.pci), JSON.stringify({ containerId: '../x', ifname: 'net1', network: 'ovl' }));
    expect((await b.run('GC', { env: gcEnv, config: gcConfig(b) })).exitCode).toBe(0);
    expect(s.listAllocations()).toHaveLength(PF0_VFS.length);
    expect((await b.run('ADD')).json).toMatchObject({ code: 100 });
  });
});

describe('temporary files and the log file', () => {
  it('records leave no temporary files; names are random, not pid-based', () => {
    const s = new StateStore(join(tmpDir(), 'state'));
    s.ensure();
    const planted = join(s.attachmentsDir, `.c1:net1.tmp${process.pid}`);
    const target = join(tmpDir(), 'target');
    writeFileSync(target, 'keep');
    symlinkSync(target, planted);
    expect(s.tryAllocate('0000:03:00.2', { containerId: 'c1', ifname: 'net1', network: 'ovl' })).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('keep');
    expect(readdirSync(s.allocationsDir)).toEqual(['0000:03:00.2']);
  });

  it('a symlinked logFile is not followed: the target is untouched, a warning goes to stderr, logging still works', () => {
    const dir = tmpDir();
    const target = join(dir, 'shadow');
    writeFileSync(target, 'root:x:0:0\n');
    const logFile = join(dir, 'plugin.log');
    symlinkSync(target, logFile);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const log = createLogger({ logFile, logLevel: 'info' });
      log.info('hello');
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('is a symbolic link (not followed)');
    } finally {
      stderr.mockRestore();
    }
    expect(readFileSync(target, 'utf8')).toBe('root:x:0:0\n');
  });

  it('a new logFile is created 0640 and appended to', () => {
    const logFile = join(tmpDir(), 'logs', 'p.log');
    createLogger({ logFile, logLevel: 'info' }).info('one');
    createLogger({ logFile, logLevel: 'info' }).info('two');
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['one', 'two']);
  });
});

describe('limits', () => {
  const longId = 'a'.repeat(256);

  it('a 256-character container ID: ADD, CHECK, DEL and GC work; the record is stored under a hash', async () => {
    const b = bed();
    const add = await b.run('ADD', { containerId: longId });
    expect(add.exitCode).toBe(0);
    const files = readdirSync(join(b.stateDir, 'attachments'));
    expect(files).toEqual([expect.stringMatching(/^h-[0-9a-f]{64}$/)]);
    expect(new StateStore(b.stateDir).loadAttachment(longId, 'net1')?.containerId).toBe(longId);
    expect(new StateStore(b.stateDir).loadAttachment(`${longId.slice(1)}b`, 'net1')).toBeUndefined();
    expect((await b.run('CHECK', { containerId: longId, config: b.config({ prevResult: add.json }) })).exitCode).toBe(0);
    expect((await b.run('GC', { env: gcEnv, config: gcConfig(b, [{ containerID: longId, ifname: 'net1' }]) })).exitCode).toBe(0);
    expect(readdirSync(join(b.stateDir, 'attachments'))).toHaveLength(1);
    expect((await b.run('DEL', { containerId: longId })).exitCode).toBe(0);
    expect(b.stateFiles()).toEqual([]);
  });

  it('a 200-character container ID keeps a readable record name', async () => {
    const b = bed();
    const id = 'b'.repeat(200);
    expect((await b.run('ADD', { containerId: id })).exitCode).toBe(0);
    expect(readdirSync(join(b.stateDir, 'attachments'))).toEqual([`${id}:net1`]);
    const gc = await b.run('GC', { env: gcEnv, config: gcConfig(b) });
    expect(gc.exitCode).toBe(0);
    expect(b.stateFiles()).toEqual([]);
  });

  it('a 5,000-deep prevResult.dns is code 6 before any host work', async () => {
    const b = bed();
    const conf = JSON.stringify(b.config()).replace(/}$/, `,"prevResult":{"cniVersion":"1.1.0","dns":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`);
    const out = await b.run('ADD', { config: conf as unknown as Record<string, unknown> });
    expect(out.json).toMatchObject({ code: 6 });
    expect(String(out.json?.msg)).toContain('deeper than 64');
    expect(b.host.calls).toEqual([]);
    expect(b.stateFiles()).toEqual([]);
  });
});

describe('an ADD in flight is never treated as an interrupted one', () => {
  it('a live ADD\'s record: a second ADD is code 11, DEL is code 11, GC skips it; nothing is released', async () => {
    const b = bed();
    const att = await addedRecord(b);
    plant(b, att, { phase: 'adding', owner: selfIdentity() });
    b.host.clearCalls();
    b.ipam.resetLog();
    const again = await b.run('ADD');
    expect(again.json).toMatchObject({ code: 11 });
    expect(String(again.json?.msg)).toMatch(/still running \(pid \d+\); try again later/);
    expect((await b.run('DEL')).json).toMatchObject({ code: 11 });
    expect((await b.run('GC', { env: gcEnv, config: gcConfig(b) })).exitCode).toBe(0);
    expect(b.ipam.commands()).not.toContain('DEL'); // GC itself is forwarded to the IPAM plugin; nothing is released
    expect(b.host.calls.filter((c) => c.file === 'ip' || c.file === 'nsenter')).toEqual([]);
    expect(new StateStore(b.stateDir).listAllocations()).toEqual([att.vf.pci]);
  });

  it('a killed ADD\'s record (owner process gone) is still cleaned up by the next ADD', async () => {
    const b = bed();
    const att = await addedRecord(b);
    plant(b, att, { phase: 'adding', owner: DEAD_OWNER });
    b.ipam.resetLog();
    expect((await b.run('ADD')).exitCode).toBe(0);
    expect(b.ipam.commands()).toEqual(['DEL', 'ADD']);
  });

  it('with a slow IPAM: a second ADD and a GC during the first leave it alone; the first completes with its claim', async () => {
    const b = bed();
    const gate = join(b.root, 'go');
    writeFileSync(join(b.cniPath, 'slow-ipam'), `#!/bin/sh\ncat >/dev/null\nwhile [ ! -e ${gate} ]; do sleep 0.05; done\ncat ${join(b.cniPath, 'result.json')}\n`, { mode: 0o755 });
    const config = b.config({ ipam: { type: 'slow-ipam' } });
    const first = b.run('ADD', { config });
    const s = new StateStore(b.stateDir);
    while (s.listAttachments().length === 0) await new Promise((r) => setTimeout(r, 20));
    const second = await b.run('ADD', { config });
    expect(second.json).toMatchObject({ code: 11 });
    expect((await b.run('GC', { env: gcEnv, config: gcConfig(b) })).exitCode).toBe(0);
    writeFileSync(gate, '');
    expect((await first).exitCode).toBe(0);
    const att = s.loadAttachment('c1', 'net1');
    expect(att?.phase).toBe('ready');
    expect(s.allocationOwner(att?.vf.pci as string)).toMatchObject({ containerId: 'c1', ifname: 'net1' });
    expect(s.listAllocations()).toEqual([att?.vf.pci]);
  });
});

describe('stale claims heal', () => {
  /** What the kernel does when a namespace dies: the VF comes back to the host namespace. */
  function netnsDies(b: Bed, n: TestNetns, vf: number): void {
    const links = b.host.namespaces.get(n.path);
    const l = links?.get('net1');
    if (!l) throw new Error('no net1');
    b.host.namespaces.delete(n.path);
    b.host.addLink('host', { ...l, name: PF0_VFS[vf]!.netdev as string });
    n.close();
  }

  it('with the pool exhausted, a claim whose container namespace died is reclaimed (IPAM and DPU released); live ones never are', async () => {
    const b = bed();
    const own = await Promise.all([createNetns(), createNetns(), createNetns(), createNetns(), createNetns()]);
    try {
      for (const n of own) b.host.addNetns(n.path);
      for (let i = 0; i < 4; i++) expect((await b.run('ADD', { containerId: `c${i}`, netns: own[i]!.path })).exitCode).toBe(0);
      const full = await b.run('ADD', { containerId: 'c4', netns: own[4]!.path });
      expect(full.json).toMatchObject({ code: 100 });
      const s = new StateStore(b.stateDir);
      const victim = s.loadAttachment('c2', 'net1') as Attachment;
      const vfIndex = PF0_VFS.findIndex((v) => v.pci === victim.vf.pci);
      netnsDies(b, own[2]!, vfIndex);
      while (existsSync(own[2]!.path)) await new Promise((r) => setTimeout(r, 10));
      b.ipam.resetLog();
      const add = await b.run('ADD', { containerId: 'c4', netns: own[4]!.path });
      expect(add.exitCode).toBe(0);
      expect(b.ipam.log().map((l) => l.slice(0, 3).join(' '))).toEqual(['DEL c2 net1', 'ADD c4 net1']);
      expect(s.loadAttachment('c2', 'net1')).toBeUndefined();
      expect(s.allocationOwner(victim.vf.pci)).toMatchObject({ containerId: 'c4' });
      expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ containerId: 'c2' })]);
      for (const id of ['c0', 'c1', 'c3']) expect(s.loadAttachment(id, 'net1')?.phase).toBe('ready');
      expect((await b.run('ADD', { containerId: 'c5', netns: own[0]!.path })).json).toMatchObject({ code: 100 });
    } finally {
      for (const n of own) n.close();
    }
  });
});
