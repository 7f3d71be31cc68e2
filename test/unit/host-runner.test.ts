import { CommandError, MAX_OUTPUT_BYTES, parseProcNetDev, ProcessRunner, runChecked } from '../../src/kernel/exec';
import { fail, ok, ScriptedRunner } from './helpers/scripted-runner';
import { kindOfStderr } from '../../src/kernel/errors';

const sh = (script: string, opts: Parameters<ProcessRunner['run']>[2] = {}) => new ProcessRunner().run('/bin/sh', ['-c', script], opts);

describe('ProcessRunner', () => {
  it('returns exit code, stdout and stderr untrimmed', async () => {
    expect(await sh('printf "out\\n"; printf "err\\n" >&2; exit 3')).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes input on stdin', async () => {
    expect((await sh('cat', { input: '{"a":1}\nline2' })).stdout).toBe('{"a":1}\nline2');
  });

  it('uses exactly the given environment', async () => {
    const r = await new ProcessRunner().run('/usr/bin/env', [], { env: { ONLY: 'this' } });
    expect(r.stdout).toBe('ONLY=this\n');
  });

  it('a command that exits without reading its stdin keeps its exit code and output (VERSION-style)', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    expect(await sh('echo done', { input: big })).toEqual({ exitCode: 0, stdout: 'done\n', stderr: '' });
  });

  it('an IPAM VERSION that exits without reading a 16 MiB config (EPIPE) is a normal result with its exit code', async () => {
    const config = JSON.stringify({ cniVersion: '1.1.0', pad: 'x'.repeat(16 * 1024 * 1024) });
    expect(await sh('echo \'{"supportedVersions":["1.0.0"]}\'', { input: config })).toEqual({ exitCode: 0, stdout: '{"supportedVersions":["1.0.0"]}\n', stderr: '' });
    expect(await sh('echo no >&2; exit 4', { input: config })).toEqual({ exitCode: 4, stdout: '', stderr: 'no\n' });
  });

  it('cuts off a child that prints more than the output cap instead of buffering it', async () => {
    expect(MAX_OUTPUT_BYTES).toBe(16 * 1024 * 1024);
    const r = await new ProcessRunner(64 * 1024).run('/bin/sh', ['-c', 'head -c 1000000 /dev/zero']);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/printed more than/);
  });

  it('a missing program is exit 127 with a message, not an exception', async () => {
    const r = await new ProcessRunner().run('/nonexistent/ipam', []);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('/nonexistent/ipam');
  });

  it('kills a command that runs past timeoutMs', async () => {
    const started = Date.now();
    const r = await sh('sleep 10', { timeoutMs: 200 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('arguments are not interpreted by a shell', async () => {
    const r = await new ProcessRunner().run('/bin/echo', ['$(id)', '; ls', '`x`']);
    expect(r.stdout).toBe('$(id) ; ls `x`\n');
  });
});

describe('runChecked', () => {
  it('returns the result on exit 0', async () => {
    expect(await runChecked(new ScriptedRunner([ok('x')]), 'ip', ['a'])).toEqual(ok('x'));
  });
  it('throws CommandError (kind from stderr) with the command and stderr otherwise', async () => {
    const err = (await runChecked(new ScriptedRunner([fail('Device "x" does not exist.\n', 1)]), 'ip', ['link', 'show', 'x']).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.kind).toBe('not-found');
    expect(err.message).toBe('ip link show x failed (exit 1): Device "x" does not exist.');
    expect(err.result.exitCode).toBe(1);
  });
});

describe('hostNetdevs', () => {
  it('reads the device names of /proc/self/net/dev', () => {
    const text = 'Inter-|   Receive\n face |bytes\n    lo: 1 2 3\nens1f0v0:    0 0\n  eth0: 5\n';
    expect([...parseProcNetDev(text)]).toEqual(['lo', 'ens1f0v0', 'eth0']);
    expect(new ProcessRunner().hostNetdevs().has('lo')).toBe(true);
  });
});

describe('kindOfStderr', () => {
  it.each([
    ['RTNETLINK answers: File exists', 'exists'],
    ['Device "x" does not exist.', 'not-found'],
    ['Cannot find device "x"', 'not-found'],
    ['RTNETLINK answers: Device or resource busy', 'busy'],
    ['RTNETLINK answers: Operation not permitted', 'permission'],
    ['ip: timed out after 200 ms', 'timeout'],
    ['RTNETLINK answers: Invalid argument', 'invalid'],
    ['something else', 'io'],
  ])('%s is %s', (stderr, kind) => {
    expect(kindOfStderr(stderr)).toBe(kind);
  });
});
