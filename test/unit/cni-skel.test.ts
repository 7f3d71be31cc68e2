import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CniError } from '../../src/cni/errors';
import { dispatch, MAX_STDIN_BYTES, type CniRequest, type PluginHandlers, readStdin, readStream } from '../../src/cni/skel';
import type { CniResult } from '../../src/cni/types';
import { runCni } from './helpers/cni';

const NETNS = '/proc/self/ns/net';
const envFor = (command: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'c1', CNI_NETNS: NETNS, CNI_IFNAME: 'net1', CNI_PATH: '/opt/cni/bin' });

const addResult: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: NETNS, pciID: '0000:03:00.2' }],
  ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }],
};

/** Handlers that record the requests they got. */
function recordingHandlers(overrides: Partial<PluginHandlers> = {}): { handlers: PluginHandlers; seen: Array<[string, CniRequest]> } {
  const seen: Array<[string, CniRequest]> = [];
  const rec = (name: string) => async (req: CniRequest) => {
    seen.push([name, req]);
  };
  const handlers: PluginHandlers = {
    add: async (req) => {
      seen.push(['add', req]);
      return addResult;
    },
    del: rec('del'),
    check: rec('check'),
    gc: rec('gc'),
    status: rec('status'),
    ...overrides,
  };
  return { handlers, seen };
}

const conf = (v = '1.1.0', extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: 'ovl', type: 'dpu-overlay', ...extra });

describe('dispatch', () => {
  it('VERSION prints the version info and ignores stdin content', async () => {
    const { handlers, seen } = recordingHandlers();
    const out = await runCni(handlers, { CNI_COMMAND: 'VERSION' }, 'not even json');
    expect(out.exitCode).toBe(0);
    expect(out.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    expect(seen).toEqual([]);
  });

  it.each([
    ['ADD', 'add'],
    ['DEL', 'del'],
    ['CHECK', 'check'],
    ['GC', 'gc'],
    ['STATUS', 'status'],
  ])('%s goes to the %s handler with env, raw and parsed config', async (command, handler) => {
    const { handlers, seen } = recordingHandlers();
    const raw = JSON.stringify(conf('1.1.0', { vni: 7 }));
    const out = await runCni(handlers, { ...envFor(command), CNI_ARGS: 'A=1' }, raw);
    expect(out.exitCode).toBe(0);
    expect(seen.map((s) => s[0])).toEqual([handler]);
    const req = (seen[0] as [string, CniRequest])[1];
    expect(req.rawConfig).toBe(raw);
    expect(req.config).toEqual(conf('1.1.0', { vni: 7 }));
    expect(req.cniVersion).toBe('1.1.0');
    expect(req.env).toMatchObject({ command, args: { A: '1' } });
    if (command === 'ADD') expect(out.writes).toHaveLength(1);
    else expect(out.writes).toEqual([]);
  });

  it('ADD prints exactly one JSON document: the result in the config cniVersion', async () => {
    const { handlers } = recordingHandlers();
    const out = await runCni(handlers, envFor('ADD'), conf('0.3.1'));
    expect(out.exitCode).toBe(0);
    expect(out.writes).toHaveLength(1);
    expect(out.json).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: NETNS }],
      ips: [{ version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }],
    });
  });

  it('ADD with 1.1.0 keeps mtu and pciID', async () => {
    const { handlers } = recordingHandlers();
    const out = await runCni(handlers, envFor('ADD'), conf('1.1.0'));
    expect(out.json).toEqual(addResult);
  });

  it('invalid JSON is code 6', async () => {
    const { handlers, seen } = recordingHandlers();
    const out = await runCni(handlers, envFor('ADD'), '{"cniVersion": "1.1.0",');
    expect(out.exitCode).toBe(1);
    expect(out.json).toMatchObject({ code: 6, cniVersion: '1.1.0' });
    expect(seen).toEqual([]);
  });

  it.each([['[]'], ['"string"'], ['42'], ['null']])('non-object %s is code 6', async (raw) => {
    const { handlers } = recordingHandlers();
    const out = await runCni(handlers, envFor('DEL'), raw);
    expect(out.exitCode).toBe(1);
    expect(out.json?.code).toBe(6);
  });

  it('missing CNI_COMMAND is code 4', async () => {
    const { handlers } = recordingHandlers();
    const out = await runCni(handlers, { CNI_CONTAINERID: 'c1' }, conf());
    expect(out.exitCode).toBe(1);
    expect(out.json?.code).toBe(4);
  });

  it('the error object is exactly {cniVersion, code, msg} (+details when given), in the config version', async () => {
    const { handlers } = recordingHandlers({
      add: async () => {
        throw new CniError(100, 'no free VF on PF ens1f0');
      },
      del: async () => {
        throw new CniError(11, 'DPU busy', 'retry later');
      },
    });
    const add = await runCni(handlers, envFor('ADD'), conf('0.4.0'));
    expect(add.exitCode).toBe(1);
    expect(add.writes).toHaveLength(1);
    expect(add.json).toEqual({ cniVersion: '0.4.0', code: 100, msg: 'no free VF on PF ens1f0' });
    const del = await runCni(handlers, envFor('DEL'), conf('1.0.0'));
    expect(del.json).toEqual({ cniVersion: '1.0.0', code: 11, msg: 'DPU busy', details: 'retry later' });
  });

  it('an unexpected exception becomes code 5 and is reported to onError', async () => {
    const { handlers } = recordingHandlers({
      del: async () => {
        throw new TypeError('boom');
      },
    });
    const writes: string[] = [];
    const errors: Array<[unknown, string]> = [];
    const code = await dispatch(handlers, {
      env: envFor('DEL'),
      readStdin: async () => JSON.stringify(conf()),
      writeStdout: (t) => void writes.push(t),
      onError: (e, c) => void errors.push([e, c]),
    });
    expect(code).toBe(1);
    expect(writes.map((w) => JSON.parse(w))).toEqual([{ cniVersion: '1.1.0', code: 5, msg: 'boom' }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[1]).toBe('DEL');
  });

  it('an unsupported cniVersion is code 1, reported in the current version', async () => {
    const { handlers, seen } = recordingHandlers();
    const out = await runCni(handlers, envFor('ADD'), conf('0.2.0'));
    expect(out.json).toMatchObject({ cniVersion: '1.1.0', code: 1 });
    expect(seen).toEqual([]);
  });

  it('a missing cniVersion is code 1', async () => {
    const { handlers } = recordingHandlers();
    const out = await runCni(handlers, envFor('DEL'), { name: 'ovl' });
    expect(out.json?.code).toBe(1);
  });

  it('CHECK with 0.3.1 and GC/STATUS with 1.0.0 are code 1 and reach no handler', async () => {
    const { handlers, seen } = recordingHandlers();
    expect((await runCni(handlers, envFor('CHECK'), conf('0.3.1'))).json).toMatchObject({ code: 1, cniVersion: '0.3.1' });
    expect((await runCni(handlers, envFor('GC'), conf('1.0.0'))).json).toMatchObject({ code: 1 });
    expect((await runCni(handlers, envFor('STATUS'), conf('1.0.0'))).json).toMatchObject({ code: 1 });
    expect(seen).toEqual([]);
  });

  it('environment errors are code 4 and reach no handler', async () => {
    const { handlers, seen } = recordingHandlers();
    expect((await runCni(handlers, { ...envFor('ADD'), CNI_IFNAME: 'this-is-too-long0' }, conf())).json?.code).toBe(4);
    expect((await runCni(handlers, { ...envFor('ADD'), CNI_NETNS: undefined }, conf())).json?.code).toBe(4);
    expect((await runCni(handlers, { ...envFor('ADD'), CNI_NETNS: '/nonexistent/netns' }, conf())).json?.code).toBe(4);
    expect(seen).toEqual([]);
  });

  it('a stdin read failure is reported as an error object', async () => {
    const { handlers } = recordingHandlers();
    const writes: string[] = [];
    const code = await dispatch(handlers, {
      env: envFor('ADD'),
      readStdin: () => readStream(Readable.from([Buffer.alloc(64)]), 16),
      writeStdout: (t) => void writes.push(t),
    });
    expect(code).toBe(1);
    expect(writes.map((w) => JSON.parse(w))).toEqual([expect.objectContaining({ code: 6 })]);
  });
});

describe('readStream', () => {
  it('concatenates chunks (multi-byte characters split across chunks)', async () => {
    const bytes = Buffer.from('{"name":"ünïcødé"}');
    const s = Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]);
    expect(await readStream(s)).toBe('{"name":"ünïcødé"}');
  });
  it('accepts exactly the limit', async () => {
    expect(await readStream(Readable.from([Buffer.alloc(10, 'a')]), 10)).toBe('a'.repeat(10));
  });
  it('refuses one byte more than the limit with code 6', async () => {
    await expect(readStream(Readable.from([Buffer.alloc(6, 'a'), Buffer.alloc(5, 'a')]), 10)).rejects.toMatchObject({ code: 6 });
  });
  it('the default limit is 16 MiB', () => {
    expect(MAX_STDIN_BYTES).toBe(16 * 1024 * 1024);
  });
  it('accepts string chunks', async () => {
    expect(await readStream(Readable.from(['ab', 'c'], { objectMode: true }))).toBe('abc');
  });
});

describe('readStdin (the descriptor read synchronously)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stdin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fdOf = (name: string, bytes: Buffer) => {
    writeFileSync(join(dir, name), bytes);
    return openSync(join(dir, name), 'r');
  };

  it('reads to the end, past its 64 KiB buffer, multi-byte characters across the seams', async () => {
    const text = '{"name":"' + 'ünïcødé'.repeat(20000) + '"}';
    const fd = fdOf('big', Buffer.from(text));
    try {
      expect(await readStdin(MAX_STDIN_BYTES, fd)).toBe(text);
    } finally {
      closeSync(fd);
    }
  });
  it('accepts exactly the limit and refuses one byte more with code 6', async () => {
    const fd10 = fdOf('ten', Buffer.alloc(10, 'a'));
    const fd11 = fdOf('eleven', Buffer.alloc(11, 'a'));
    try {
      expect(await readStdin(10, fd10)).toBe('a'.repeat(10));
      await expect(readStdin(10, fd11)).rejects.toMatchObject({ code: 6 });
    } finally {
      closeSync(fd10);
      closeSync(fd11);
    }
  });
  it('a non-blocking descriptor (EAGAIN) goes on through the stream, the bytes joined before decoding', async () => {
    const bytes = Buffer.from('{"name":"ünïcødé"}');
    const eagain = Object.assign(new Error('EAGAIN: resource temporarily unavailable, read'), { code: 'EAGAIN' });
    // the module object skel.ts calls through (an import * namespace is frozen)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const spy = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readSync').mockImplementationOnce((_fd, buf: NodeJS.ArrayBufferView) => bytes.copy(buf as Buffer, 0, 0, 10)).mockImplementationOnce(() => {
      throw eagain;
    });
    try {
      expect(await readStdin(MAX_STDIN_BYTES, 99, () => Readable.from([bytes.subarray(10)]))).toBe('{"name":"ünïcødé"}');
    } finally {
      spy.mockRestore();
    }
  });
  it('any other read error is the caller\'s', async () => {
    await expect(readStdin(MAX_STDIN_BYTES, 987654)).rejects.toMatchObject({ code: 'EBADF' });
  });
});
