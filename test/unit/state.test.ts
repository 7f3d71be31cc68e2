import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { storeErrorOf } from './helpers/errors';
import { type Attachment, InvalidRecordError, StateStore } from '../../src/store/attachments';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const owner = (containerId: string, ifname = 'net1', network = 'ovl') => ({ containerId, ifname, network });

function fresh(): StateStore {
  const s = new StateStore(join(tmpDir(), 'state'));
  s.ensure();
  return s;
}

function attachment(containerId: string, ifname: string, extra: Partial<Attachment> = {}): Attachment {
  return {
    version: 1,
    phase: 'ready',
    network: 'ovl',
    containerId,
    ifname,
    netns: '/run/netns/x',
    vni: 5001,
    vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: '02:00:00:00:00:01', originalMtu: 1500 },
    tmpName: 'dpuo01020304',
    mtu: 1450,
    rawConfig: '{}',
    cniPath: ['/opt/cni/bin'],
    ...extra,
  };
}

describe('ensure and file modes', () => {
  it('creates stateDir, allocations/ and attachments/ with mode 0700', () => {
    const dir = join(tmpDir(), 'a', 'b');
    const s = new StateStore(dir);
    s.ensure();
    for (const d of [dir, s.allocationsDir, s.attachmentsDir]) expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it('allocation and attachment files are 0600', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    s.saveAttachment(attachment('c1', 'net1'));
    expect(statSync(join(s.allocationsDir, '0000:03:00.2')).mode & 0o777).toBe(0o600);
    const [name] = readdirSync(s.attachmentsDir);
    expect(statSync(join(s.attachmentsDir, name as string)).mode & 0o777).toBe(0o600);
  });

  it('a stateDir that cannot be created is code 5', () => {
    const file = join(tmpDir(), 'file');
    writeFileSync(file, '');
    expect(storeErrorOf(() => new StateStore(join(file, 'state')).ensure()).code).toBe(5);
  });
});

describe('tryAllocate', () => {
  it('the first claim wins and records the owner', () => {
    const s = fresh();
    expect(s.tryAllocate('0000:03:00.2', owner('c1'))).toBe(true);
    expect(s.allocationOwner('0000:03:00.2')).toMatchObject(owner('c1'));
    expect(JSON.parse(readFileSync(join(s.allocationsDir, '0000:03:00.2'), 'utf8'))).toMatchObject({ pid: process.pid });
    expect(s.listAllocations()).toContain('0000:03:00.2');
    expect(s.listAllocations()).not.toContain('0000:03:00.3');
  });

  it('the same owner claiming again gets true; the record is unchanged', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    const before = readFileSync(join(s.allocationsDir, '0000:03:00.2'), 'utf8');
    expect(s.tryAllocate('0000:03:00.2', owner('c1'))).toBe(true);
    expect(readFileSync(join(s.allocationsDir, '0000:03:00.2'), 'utf8')).toBe(before);
  });

  it('another container, or another ifname of the same container, gets false and the owner stays', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    expect(s.tryAllocate('0000:03:00.2', owner('c2'))).toBe(false);
    expect(s.tryAllocate('0000:03:00.2', owner('c1', 'net2'))).toBe(false);
    expect(s.allocationOwner('0000:03:00.2')).toMatchObject(owner('c1'));
  });

  it('leaves no temporary files behind, whether it wins or loses', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    s.tryAllocate('0000:03:00.2', owner('c2'));
    expect(readdirSync(s.allocationsDir)).toEqual(['0000:03:00.2']);
    expect(s.listAllocations()).toEqual(['0000:03:00.2']);
  });

  it('listAllocations ignores dot files (half-written claims)', () => {
    const s = fresh();
    writeFileSync(join(s.allocationsDir, '.0000:03:00.4.999'), '{');
    s.tryAllocate('0000:03:00.3', owner('c1'));
    expect(s.listAllocations()).toEqual(['0000:03:00.3']);
  });

  it('fails with code 5 when the allocations directory is missing', () => {
    const s = new StateStore(join(tmpDir(), 'never-ensured'));
    expect(storeErrorOf(() => s.tryAllocate('0000:03:00.2', owner('c1'))).code).toBe(5);
  });

  it('many claims of the same VF in one process: only the first owner wins', async () => {
    const s = fresh();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => Promise.resolve().then(() => s.tryAllocate('0000:03:00.2', owner(`c${i}`)))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(results[0]).toBe(true);
  });
});

describe('tryAllocate across processes', () => {
  const CHILDREN = 20;
  const PCIS = Array.from({ length: 40 }, (_, i) => `0000:05:${String(Math.floor(i / 8)).padStart(2, '0')}.${i % 8}`);

  /** The real state.ts, bundled to plain JS for child processes. */
  function bundleStateModule(): string {
    const out = join(tmpDir(), 'state.js');
    buildSync({ entryPoints: [join(__dirname, '../../src/store/attachments.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'silent' });
    return out;
  }

  // Each child: load the module, say "ready", wait for "go" on stdin, then try to claim every PCI address
  // in the same order as all the others, and print what it won.
  const CHILD = `
    const { StateStore } = require(process.argv[1]);
    const s = new StateStore(process.argv[2]);
    const pcis = JSON.parse(process.argv[3]);
    const me = process.argv[4];
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      const won = pcis.filter((p) => s.tryAllocate(p, { containerId: me, ifname: 'net1', network: 'ovl' }));
      process.stdout.write(JSON.stringify(won) + '\\n');
      process.exit(0);
    });
  `;

  it(`${CHILDREN} processes racing for ${PCIS.length} VFs: every VF has exactly one winner, and the record names it`, async () => {
    const mod = bundleStateModule();
    const s = fresh();
    const children: Array<{ id: string; proc: ChildProcess; out: string; ready: Promise<void>; done: Promise<number | null> }> = [];
    for (let i = 0; i < CHILDREN; i++) {
      const id = `racer${i}`;
      const proc = spawn(process.execPath, ['-e', CHILD, mod, s.dir, JSON.stringify(PCIS), id], { stdio: ['pipe', 'pipe', 'inherit'] });
      const entry = { id, proc, out: '', ready: Promise.resolve(), done: Promise.resolve<number | null>(null) };
      entry.ready = new Promise<void>((resolve) => {
        proc.stdout?.on('data', (d: Buffer) => {
          entry.out += d.toString();
          if (entry.out.startsWith('ready\n')) resolve();
        });
      });
      entry.done = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
      children.push(entry);
    }
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.stdin?.write('go\n');
    expect(await Promise.all(children.map((c) => c.done))).toEqual(Array(CHILDREN).fill(0));

    const wonBy = new Map<string, string[]>();
    for (const c of children) {
      const won = JSON.parse(c.out.split('\n')[1] as string) as string[];
      for (const p of won) wonBy.set(p, [...(wonBy.get(p) ?? []), c.id]);
    }
    for (const p of PCIS) {
      expect({ pci: p, winners: wonBy.get(p) ?? [] }).toEqual({ pci: p, winners: [expect.any(String)] });
      expect(s.allocationOwner(p)?.containerId).toBe(wonBy.get(p)?.[0]);
    }
    expect(readdirSync(s.allocationsDir).sort()).toEqual([...PCIS].sort()); // no temporary files left
  }, 60000);
});

describe('release', () => {
  it('the owner frees its VF', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    s.release('0000:03:00.2', owner('c1'));
    expect(s.listAllocations()).toEqual([]);
    expect(s.tryAllocate('0000:03:00.2', owner('c2'))).toBe(true);
  });

  it('another owner cannot free it', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    s.release('0000:03:00.2', owner('c2'));
    s.release('0000:03:00.2', owner('c1', 'net2'));
    expect(s.allocationOwner('0000:03:00.2')).toMatchObject(owner('c1'));
  });

  it('without an owner it frees unconditionally (GC)', () => {
    const s = fresh();
    s.tryAllocate('0000:03:00.2', owner('c1'));
    s.release('0000:03:00.2');
    expect(s.listAllocations()).toEqual([]);
  });

  it('releasing a VF that is not allocated is a no-op', () => {
    const s = fresh();
    expect(() => s.release('0000:03:00.9', owner('c1'))).not.toThrow();
  });
});

describe('attachments', () => {
  it('save / load round-trip', () => {
    const s = fresh();
    const a = attachment('c1', 'net1', { dpu: { target: 'root@dpu:22', bridge: 'br-vni5001', representor: 'pf0vf0', portUuid: '00000000-0000-4000-8000-000000000001' }, adminSaved: { vlan: 0 } });
    s.saveAttachment(a);
    expect(s.loadAttachment('c1', 'net1')).toEqual(a);
    expect(s.loadAttachment('c1', 'net2')).toBeUndefined();
    expect(s.loadAttachment('c2', 'net1')).toBeUndefined();
  });

  it('save overwrites atomically and leaves no temporary file', () => {
    const s = fresh();
    s.saveAttachment(attachment('c1', 'net1', { phase: 'adding' }));
    s.saveAttachment(attachment('c1', 'net1', { phase: 'ready' }));
    expect(s.loadAttachment('c1', 'net1')?.phase).toBe('ready');
    expect(readdirSync(s.attachmentsDir)).toHaveLength(1);
  });

  it('list returns every saved attachment; remove deletes one', () => {
    const s = fresh();
    s.saveAttachment(attachment('c1', 'net1'));
    s.saveAttachment(attachment('c2', 'net1'));
    s.saveAttachment(attachment('c2', 'net2'));
    expect(s.listAttachments().map((a) => `${a.containerId}/${a.ifname}`).sort()).toEqual(['c1/net1', 'c2/net1', 'c2/net2']);
    s.removeAttachment('c2', 'net1');
    expect(s.listAttachments().map((a) => `${a.containerId}/${a.ifname}`).sort()).toEqual(['c1/net1', 'c2/net2']);
    expect(() => s.removeAttachment('c2', 'net1')).not.toThrow();
  });

  it('list skips unreadable entries and in-flight temporary files', () => {
    const s = fresh();
    s.saveAttachment(attachment('c1', 'net1'));
    const [name] = readdirSync(s.attachmentsDir);
    writeFileSync(join(s.attachmentsDir, `.${name}.tmp4242`), '{"half":');
    writeFileSync(join(s.attachmentsDir, 'garbage'), 'not json');
    expect(s.listAttachments().map((a) => a.containerId)).toEqual(['c1']);
  });

  it('loading a corrupt record is an InvalidRecordError naming the file, never a guess', () => {
    const s = fresh();
    s.saveAttachment(attachment('c1', 'net1'));
    const [name] = readdirSync(s.attachmentsDir);
    writeFileSync(join(s.attachmentsDir, name as string), '{');
    expect(() => s.loadAttachment('c1', 'net1')).toThrow(InvalidRecordError);
    expect(() => s.loadAttachment('c1', 'net1')).toThrow(name as string);
  });

  it('list and load on a missing stateDir are empty', () => {
    const s = new StateStore(join(tmpDir(), 'none'));
    expect(s.listAttachments()).toEqual([]);
    expect(s.listAllocations()).toEqual([]);
    expect(s.loadAttachment('c1', 'net1')).toBeUndefined();
  });

  it('container "a-b" with ifname "c" and container "a" with ifname "b-c" are different attachments', () => {
    const s = fresh();
    s.saveAttachment(attachment('a', 'b-c'));
    expect(s.loadAttachment('a-b', 'c')).toBeUndefined();
    s.saveAttachment(attachment('a-b', 'c', { vni: 7 }));
    expect(s.loadAttachment('a', 'b-c')?.vni).toBe(5001);
    expect(s.loadAttachment('a-b', 'c')?.vni).toBe(7);
    expect(s.listAttachments()).toHaveLength(2);
  });

  it('a container ID containing ".tmp" is still listed (GC must see it)', () => {
    const s = fresh();
    s.saveAttachment(attachment('build.tmp1', 'net1'));
    s.saveAttachment(attachment('c1', 'eth0.tmp'));
    expect(s.listAttachments().map((a) => a.containerId).sort()).toEqual(['build.tmp1', 'c1']);
  });

  it('save fails loudly when attachments/ is missing (a record is never silently lost)', () => {
    const s = new StateStore(join(tmpDir(), 'missing'));
    expect(() => s.saveAttachment(attachment('c1', 'net1'))).toThrow();
  });
});
