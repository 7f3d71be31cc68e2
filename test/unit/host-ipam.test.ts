import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import { findPlugin, type IpamCall, IpamDelegate, validateIpamResult } from '../../src/cni/invoke';
import { fail, ok, ScriptedRunner } from './helpers/scripted-runner';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

function binDirs(): { a: string; b: string } {
  const root = tmpDir();
  const a = join(root, 'a');
  const b = join(root, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, 'host-local'), '#!/bin/sh\n');
  chmodSync(join(a, 'host-local'), 0o644); // not executable: skipped
  writeFileSync(join(b, 'host-local'), '#!/bin/sh\n');
  chmodSync(join(b, 'host-local'), 0o755);
  return { a, b };
}

function call(cniPath: string[], extra: Partial<IpamCall> = {}): IpamCall {
  return {
    type: 'host-local',
    cniPath,
    rawConfig: JSON.stringify({ cniVersion: '1.1.0', name: 'ovl', ipam: { type: 'host-local' } }),
    containerId: 'c1',
    netns: '/run/netns/a',
    ifname: 'net1',
    cniArgs: 'K8S_POD_NAME=web',
    cniVersion: '1.1.0',
    ...extra,
  };
}

describe('findPlugin', () => {
  it('the first executable match in CNI_PATH order', () => {
    const { a, b } = binDirs();
    expect(findPlugin('host-local', [a, b])).toBe(join(b, 'host-local'));
  });
  it('not found is code 103 listing CNI_PATH', () => {
    const { a } = binDirs();
    let caught: unknown;
    try {
      findPlugin('dhcp', [a]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CniError);
    expect((caught as CniError).code).toBe(103);
    expect((caught as CniError).message).toContain(a);
  });
});

describe('IpamDelegate', () => {
  it('runs the plugin with the runtime environment, CNI_* of this call overriding it, and the raw config on stdin', async () => {
    const { a, b } = binDirs();
    const r = new ScriptedRunner([ok('{"cniVersion":"1.1.0","ips":[{"address":"10.1.0.5/24"}]}')]);
    const c = call([a, b]);
    const runtimeEnv = { PATH: '/opt/bin', HOME: '/root', CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'other', CNI_NETNS: '/x', CNI_IFNAME: 'eth9', CNI_ARGS: 'A=B', CNI_PATH: '/elsewhere', UNSET: undefined };
    expect(await new IpamDelegate(r, { env: runtimeEnv, stderr: () => undefined }).add(c)).toEqual({ cniVersion: '1.1.0', ips: [{ address: '10.1.0.5/24' }] });
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]?.file).toBe(join(b, 'host-local'));
    expect(r.calls[0]?.args).toEqual([]);
    expect(r.calls[0]?.opts.input).toBe(c.rawConfig);
    expect(r.calls[0]?.opts.env).toEqual({
      PATH: '/opt/bin',
      HOME: '/root',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c1',
      CNI_NETNS: '/run/netns/a',
      CNI_IFNAME: 'net1',
      CNI_ARGS: 'K8S_POD_NAME=web',
      CNI_PATH: `${a}:${b}`,
    });
  });

  it('without PATH in the environment, a default one', async () => {
    const { b } = binDirs();
    const r = new ScriptedRunner([ok()]);
    await new IpamDelegate(r, { env: {}, stderr: () => undefined }).del(call([b]));
    expect(r.calls[0]?.opts.env?.PATH).toBe('/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it("the plugin's stderr passes through, on success and failure", async () => {
    const { b } = binDirs();
    const seen: string[] = [];
    const r = new ScriptedRunner([{ exitCode: 0, stdout: '', stderr: 'warning: lease renewed' }, fail('boom\n')]);
    const d = new IpamDelegate(r, { env: {}, stderr: (t) => void seen.push(t) });
    await d.del(call([b]));
    await expect(d.del(call([b]))).rejects.toMatchObject({ code: 103 });
    expect(seen).toEqual(['warning: lease renewed\n', 'boom\n']);
  });

  it('reads an older result (0.3.1 with IP version) into the 1.1.0 shape', async () => {
    const { b } = binDirs();
    const r = new ScriptedRunner([ok('{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.1.0.5/24","gateway":"10.1.0.1"}],"dns":{}}')]);
    expect(await new IpamDelegate(r).add(call([b], { cniVersion: '0.3.1' }))).toEqual({ cniVersion: '1.1.0', ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }], dns: {} });
  });

  it('DEL and CHECK pass the command', async () => {
    const { b } = binDirs();
    const r = new ScriptedRunner([ok(), ok()]);
    await new IpamDelegate(r).del(call([b]));
    await new IpamDelegate(r).check(call([b]));
    expect(r.calls.map((c) => c.opts.env?.CNI_COMMAND)).toEqual(['DEL', 'CHECK']);
  });

  it.each<[string, ReturnType<typeof fail>, number, RegExp]>([
    ['an error object with code 11 keeps 11', fail('', 1, '{"cniVersion":"1.1.0","code":11,"msg":"lock busy","details":"d"}'), 11, /ADD failed: lock busy/],
    ['an error object with another code becomes 103', fail('', 1, '{"code":7,"msg":"bad range"}'), 103, /bad range/],
    ['plain stderr becomes 103 with it', fail('panic: no space left\n'), 103, /ADD failed: panic: no space left/],
  ])('%s', async (_n, answer, code, msg) => {
    const { b } = binDirs();
    const err = (await new IpamDelegate(new ScriptedRunner([answer])).add(call([b])).catch((e: unknown) => e)) as CniError;
    expect(err).toBeInstanceOf(CniError);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(msg);
  });

  it('output that is not JSON is code 103', async () => {
    const { b } = binDirs();
    await expect(new IpamDelegate(new ScriptedRunner([ok('10.1.0.5')])).add(call([b]))).rejects.toMatchObject({ code: 103 });
  });

  it('a plugin refusing the config version (code 1) is retried with the newest version both speak', async () => {
    const { b } = binDirs();
    const prevResult = { cniVersion: '1.1.0', interfaces: [{ name: 'net1', mtu: 1450 }], ips: [{ address: '10.1.0.5/24', interface: 0 }] };
    const c = call([b], { rawConfig: JSON.stringify({ cniVersion: '1.1.0', name: 'ovl', ipam: { type: 'host-local' }, prevResult }) });
    const r = new ScriptedRunner([fail('', 1, '{"code":1,"msg":"incompatible CNI versions"}'), ok('{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}'), ok()]);
    await new IpamDelegate(r).check(c);
    expect(r.calls.map((x) => x.opts.env?.CNI_COMMAND)).toEqual(['CHECK', 'VERSION', 'CHECK']);
    const retried = JSON.parse(r.calls[2]?.opts.input as string) as Record<string, unknown>;
    expect(retried.cniVersion).toBe('1.0.0');
    expect(retried.ipam).toEqual({ type: 'host-local' });
    expect(retried.prevResult).toEqual({ cniVersion: '1.0.0', interfaces: [{ name: 'net1' }], ips: [{ address: '10.1.0.5/24', interface: 0 }] });
  });

  it('remembers what a plugin binary answered VERSION: the next call goes in its version at once; a replaced binary is asked again', async () => {
    const { b } = binDirs();
    const refused = fail('', 1, '{"code":1,"msg":"incompatible CNI versions"}');
    const v100 = ok('{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}');
    const result = ok('{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24"}]}');
    const first = new ScriptedRunner([refused, v100, result]);
    await new IpamDelegate(first).add(call([b]));
    expect(first.calls.map((x) => x.opts.env?.CNI_COMMAND)).toEqual(['ADD', 'VERSION', 'ADD']);
    const second = new ScriptedRunner([ok()]);
    await new IpamDelegate(second).del(call([b]));
    expect(second.calls.map((x) => x.opts.env?.CNI_COMMAND)).toEqual(['DEL']);
    expect((JSON.parse(second.calls[0]?.opts.input as string) as { cniVersion: string }).cniVersion).toBe('1.0.0');
    writeFileSync(join(b, 'host-local'), '#!/bin/sh\n# upgraded\n');
    const third = new ScriptedRunner([ok()]);
    await new IpamDelegate(third).del(call([b]));
    expect(third.calls.map((x) => x.opts.env?.CNI_COMMAND)).toEqual(['DEL']);
    expect((JSON.parse(third.calls[0]?.opts.input as string) as { cniVersion: string }).cniVersion).toBe('1.1.0');
  });

  it('no common version: code 1', async () => {
    const { b } = binDirs();
    const r = new ScriptedRunner([fail('', 1, '{"code":1,"msg":"incompatible"}'), ok('{"supportedVersions":["0.1.0","0.2.0"]}')]);
    await expect(new IpamDelegate(r).del(call([b]))).rejects.toMatchObject({ code: 1 });
  });
});

describe('IpamDelegate GC and STATUS', () => {
  const v11 = ok('{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}');
  const debian = ok('{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}');
  const gcConfig = JSON.stringify({ cniVersion: '1.1.0', name: 'ovl', ipam: { type: 'host-local' }, 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }] });
  const gcCall = (cniPath: string[]) => call(cniPath, { rawConfig: gcConfig, containerId: '', netns: '', ifname: '' });
  const quiet = { env: { PATH: '/bin', CNI_COMMAND: 'GC', CNI_PATH: '/x' }, stderr: () => undefined };

  it.each(['gc', 'status'] as const)('%s: asks VERSION, then forwards the runtime config with only CNI_COMMAND and CNI_PATH set', async (method) => {
    const { b } = binDirs();
    const r = new ScriptedRunner([v11, ok()]);
    expect(await new IpamDelegate(r, quiet)[method](gcCall([b]))).toBe(true);
    expect(r.calls.map((c) => c.opts.env?.CNI_COMMAND)).toEqual(['VERSION', method.toUpperCase()]);
    expect(r.calls[1]?.opts.input).toBe(gcConfig);
    expect(r.calls[1]?.opts.env).toEqual({ PATH: '/bin', CNI_COMMAND: method.toUpperCase(), CNI_PATH: b });
  });

  it.each(['gc', 'status'] as const)('%s: a plugin speaking no version >= 1.1.0 (Debian 12 host-local, static) is not asked', async (method) => {
    const { b } = binDirs();
    const r = new ScriptedRunner([debian]);
    expect(await new IpamDelegate(r, quiet)[method](gcCall([b]))).toBe(false);
    expect(r.calls).toHaveLength(1);
  });

  it('STATUS keeps the plugin code 50/51 and turns any other failure into 50', async () => {
    // A fresh binary each time: the delegate remembers a binary's VERSION answer.
    const d = (answer: ReturnType<typeof fail>) => new IpamDelegate(new ScriptedRunner([v11, answer]), quiet).status(gcCall([binDirs().b]));
    await expect(d(fail('', 1, '{"code":51,"msg":"degraded"}'))).rejects.toMatchObject({ code: 51, message: expect.stringMatching(/STATUS failed: degraded/) });
    await expect(d(fail('', 1, '{"code":50,"msg":"no addresses left"}'))).rejects.toMatchObject({ code: 50 });
    await expect(d(fail('', 1, '{"code":7,"msg":"bad range"}'))).rejects.toMatchObject({ code: 50, message: expect.stringMatching(/bad range/) });
    await expect(d(fail('segfault'))).rejects.toMatchObject({ code: 50 });
  });

  it('GC failing is code 103 (11 kept)', async () => {
    // A fresh binary each time: the delegate remembers a binary's VERSION answer.
    const d = (answer: ReturnType<typeof fail>) => new IpamDelegate(new ScriptedRunner([v11, answer]), quiet).gc(gcCall([binDirs().b]));
    await expect(d(fail('', 1, '{"code":7,"msg":"bad"}'))).rejects.toMatchObject({ code: 103 });
    await expect(d(fail('', 1, '{"code":11,"msg":"locked"}'))).rejects.toMatchObject({ code: 11 });
  });

  it('a plugin whose VERSION answer is not a CNI version object: code 103 saying so', async () => {
    const { b } = binDirs();
    await expect(new IpamDelegate(new ScriptedRunner([ok('hello')]), quiet).gc(gcCall([b]))).rejects.toMatchObject({ code: 103, message: expect.stringMatching(/VERSION/) });
  });
});

describe('validateIpamResult', () => {
  const v = (r: object) => () => validateIpamResult({ cniVersion: '1.1.0', ...r }, 'host-local');
  it('accepts IPv4 and IPv6 addresses, gateways and routes', () => {
    expect(v({ ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }, { address: 'fd00::2/64', gateway: 'fd00::1' }], routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '::/0' }] })).not.toThrow();
  });
  it.each([
    ['address without prefix', { ips: [{ address: '10.0.0.2' }] }],
    ['prefix 33', { ips: [{ address: '10.0.0.2/33' }] }],
    ['IPv6 prefix 129', { ips: [{ address: 'fd00::2/129' }] }],
    ['extra words (would become iproute2 arguments)', { ips: [{ address: '10.0.0.2/24 dev lo' }] }],
    ['a second slash', { ips: [{ address: '10.0.0.2/24/8' }] }],
    ['a gateway that is not an IP', { ips: [{ address: '10.0.0.2/24', gateway: 'router' }] }],
    ['a route destination without prefix', { routes: [{ dst: '10.0.0.0' }] }],
    ['a route gateway with a newline', { routes: [{ dst: '10.0.0.0/8', gw: '10.0.0.1\nlink set dev eth0 down' }] }],
    ['an address that is not a string', { ips: [{ address: 5 }] }],
  ])('rejects %s with code 103', (_n, r) => {
    expect(v(r)).toThrow(expect.objectContaining({ code: 103 }));
  });
});
