import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { HELLO, readLines } from '../../src/protocol/framing';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

/**
 * The forwarding plugin loads none of zod, pino, ssh2 (nor the plugin modules that need them), nor the second
 * bundle (src/main.ts) at all: the program is bundled by scripts/bundle.js as for the binary (npm packages left
 * external, so each one loaded shows in require.cache; the second bundle as plain files shows as a read of it) and
 * run against a fake daemon socket.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { bundle: bundleProgram } = require('../../scripts/bundle.js') as { bundle(outfile: string, opts: { external: boolean }): Promise<void> };
const dir = tmpDir('fwd-deps-');
// Inside the repository, so the external packages resolve from its node_modules.
const bundle = join(__dirname, '../../build/forward-deps/dpu-overlay.cjs');
const preload = join(dir, 'preload.cjs');
const runDir = join(dir, 'run');
const socket = join(runDir, 'dpu.sock');
let server: Server;

beforeAll(async () => {
  await bundleProgram(bundle, { external: true });
  // require.cache, plus every file the process read (the second bundle is read, not required)
  writeFileSync(
    preload,
    "const fs = require('node:fs'); const read = fs.readFileSync; const files = [];\n" +
      "fs.readFileSync = function (p, ...rest) { files.push(String(p)); return read.call(this, p, ...rest); };\n" +
      "process.on('exit', () => fs.writeFileSync(process.env.CACHE_OUT, JSON.stringify([...Object.keys(require.cache), ...files])));\n",
  );
  mkdirSync(runDir, { mode: 0o700 });
  server = createServer((sock) => {
    sock.write(JSON.stringify(HELLO) + '\n');
    readLines(sock, (line) => {
      const req = JSON.parse(line) as { id: number };
      sock.write(JSON.stringify({ id: req.id, accepted: true }) + '\n');
      sock.write(JSON.stringify({ id: req.id, ok: true, exitCode: 3, stdout: '{"from":"daemon"}\n', stderr: 'daemon stderr\n' }) + '\n');
    }, () => sock.destroy(), 64 * 1024 * 1024);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  chmodSync(socket, 0o600);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  removeTmpDirs();
});

function runPlugin(daemonSocket: string, cacheOut: string, stdin = JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 1 })): Promise<{ code: number | null; stdout: string; stderr: string; loaded: string[] }> {
  const nodeFile = `${cacheOut}.node.json`;
  writeFileSync(nodeFile, JSON.stringify({ stateDir: join(dir, 'state'), logFile: join(dir, 'log'), dpu: { daemonSocket } }), { mode: 0o644 });
  const child = spawn(process.execPath, ['--require', preload, bundle], {
    env: { PATH: process.env.PATH, CACHE_OUT: cacheOut, CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_PATH: '/nonexistent', DPU_OVERLAY_NODE_CONFIG: nodeFile },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined); // the plugin may stop reading an oversized config
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, loaded: JSON.parse(readFileSync(cacheOut, 'utf8')) as string[] })));
}

const heavy = (loaded: string[]) => loaded.filter((p) => /node_modules\/(zod|pino|ssh2)\/|dpu-overlay-main\.cjs$/.test(p));

describe('the forwarding plugin', () => {
  it('prints the daemon\'s answer and loads no zod, pino, ssh2 nor the second bundle', async () => {
    const out = await runPlugin(socket, join(dir, 'cache-daemon.json'));
    expect(out).toMatchObject({ code: 3, stdout: '{"from":"daemon"}\n', stderr: 'daemon stderr\n' });
    expect(heavy(out.loaded)).toEqual([]);
  });

  it('(control) loads them when it runs the command itself', async () => {
    const out = await runPlugin('', join(dir, 'cache-standalone.json'));
    expect(out.stdout).toMatch(/"code":7/); // no DPU: the standalone plugin's own config error
    expect(heavy(out.loaded)).not.toEqual([]);
  });

  // Found by the stress fuzzer: the entry read the oversized stdin, and its CniError reached the second bundle,
  // whose CniError is another class: code 5 with a stack trace instead of code 6.
  it('a config larger than the limit, read by the entry, is the second bundle\'s code 6 (no stack trace)', async () => {
    const out = await runPlugin('', join(dir, 'cache-huge.json'), JSON.stringify({ cniVersion: '1.1.0', name: 'n', pad: 'x'.repeat(17 * 1024 * 1024) }));
    expect(out.stdout).toMatch(/"code":6/);
    expect(out.stdout).toMatch(/larger than 16777216 bytes/);
    expect(out.stderr).not.toMatch(/unexpected error|at readStdin/);
    expect(out.code).toBe(1);
  });
});
