// The Node floor: a hello-world SEA built exactly as dist/dpu-overlay is (scripts/sea.js, @yao-pkg/pkg --sea with
// this machine's node, code cache on), cached under build/bench-sea/ keyed by the node and pkg versions and by the
// text of scripts/sea.js and the hello program, so a change to any of them rebuilds it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../test/testkit/testbed';

/** Answers VERSION like a CNI plugin, and `--sea-check` with whether it runs as a SEA (a failed bake leaves plain node). */
const HELLO = `if (process.argv[2] === '--sea-check') process.stdout.write(String(require('node:sea').isSea()) + '\\n');
else process.stdout.write('{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\\n');
`;

function pkgVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@yao-pkg', 'pkg', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Throws unless `file` is a SEA that prints nothing but what it should (a warning on stderr would cost time too). */
export function checkSea(file: string): void {
  const r = spawnSync(file, ['--sea-check'], { env: { PATH: '/usr/bin:/bin' }, input: '', encoding: 'utf8' });
  if (r.status !== 0 || r.stdout !== 'true\n' || r.stderr !== '') {
    throw new Error(`${file} is not a working SEA (exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.slice(0, 300))})`);
  }
}

/** Path of the hello-world SEA, built on first use (about 10 s) and reused while its inputs are unchanged. */
export function helloSea(log: (msg: string) => void): { file: string; key: string } {
  const seaJs = join(ROOT, 'scripts', 'sea.js');
  const hash = createHash('sha256').update(HELLO).update(readFileSync(seaJs)).digest('hex').slice(0, 12);
  const key = `node${process.versions.node}-pkg${pkgVersion()}-${hash}`;
  const dir = join(ROOT, 'build', 'bench-sea', key);
  const file = join(dir, 'hello');
  if (existsSync(file)) {
    checkSea(file);
    return { file, key };
  }
  log(`building the hello-world SEA (${key}) with scripts/sea.js`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hello.cjs'), HELLO);
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  // pkg runs "npx postject"; without npm_config_yes npx would wait for a prompt (as in scripts/build.sh).
  const r = spawnSync(process.execPath, [seaJs, join(dir, 'hello.cjs'), tmp], { cwd: ROOT, env: { ...process.env, npm_config_yes: 'true' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the hello-world SEA failed: ${r.stderr.slice(-800)}`);
  checkSea(tmp);
  renameSync(tmp, file);
  return { file, key };
}
