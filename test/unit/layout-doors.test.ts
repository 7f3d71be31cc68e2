import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The rooms of src/ and the doors between them (docs/design/layout.md): a room imports only the rooms listed
 * for it, all of which stand below it. Read from the import lines of every src/ file, so a new upward import
 * fails here instead of waiting for someone to read the graph.
 */
const SRC = resolve(__dirname, '../../src');

/** Room -> the rooms it may import. A room is a folder of src/ or a file at its top. */
const DOORS: Record<string, readonly string[]> = {
  util: [],
  model: [],
  'version.ts': [],
  'log.ts': ['util'],
  cni: ['util', 'log.ts'],
  config: ['cni', 'util', 'log.ts'],
  kernel: ['cni', 'model', 'util', 'log.ts'],
  dpu: ['config', 'model', 'util', 'log.ts'],
  store: ['cni', 'config', 'kernel', 'model', 'util', 'log.ts'],
  protocol: ['config', 'dpu', 'util'],
  plugin: ['cni', 'config', 'dpu', 'kernel', 'model', 'protocol', 'store', 'util', 'log.ts', 'version.ts'],
  daemon: ['cni', 'config', 'dpu', 'kernel', 'model', 'plugin', 'protocol', 'store', 'util', 'log.ts', 'version.ts'],
  cli: ['cni', 'config', 'daemon', 'dpu', 'kernel', 'model', 'plugin', 'protocol', 'store', 'util', 'log.ts', 'version.ts'],
  'main.ts': ['cli', 'cni', 'config', 'daemon', 'dpu', 'kernel', 'model', 'plugin', 'protocol', 'store', 'util', 'log.ts', 'version.ts'],
  'sea-main.ts': ['main.ts', 'util'],
  'entry.ts': ['cni', 'daemon', 'main.ts', 'version.ts'],
};

/**
 * Upward imports still open, file to file (src-relative), as "from -> to". None is left: a crossing may be listed
 * here only while it is being removed, and each one listed must still exist.
 */
const OPEN_CROSSINGS: readonly string[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of a file: static imports and re-exports, side-effect imports, import(), require(). */
function specifiers(text: string): string[] {
  const re = /(?:\bfrom\s+|\bimport\s+|\bimport\(\s*|\brequire\(\s*)['"](\.{1,2}\/[^'"]*)['"]/g;
  return [...text.matchAll(re)].map((m) => m[1]);
}

function resolveModule(fromFile: string, spec: string): string {
  const base = resolve(dirname(fromFile), spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  throw new Error(`${relative(SRC, fromFile)}: cannot resolve ${spec}`);
}

function roomOf(file: string): string {
  return relative(SRC, file).split('/')[0];
}

interface Crossing { from: string; to: string; fromRoom: string; toRoom: string }

function crossings(): Crossing[] {
  return sourceFiles(SRC).flatMap((file) => specifiers(readFileSync(file, 'utf8')).map((spec) => {
    const target = resolveModule(file, spec);
    return { from: relative(SRC, file), to: relative(SRC, target), fromRoom: roomOf(file), toRoom: roomOf(target) };
  })).filter((c) => c.fromRoom !== c.toRoom);
}

describe('src/ layout: one-way doors', () => {
  const all = crossings();

  it('every room of src/ is in the door table', () => {
    const rooms = new Set(sourceFiles(SRC).map(roomOf));
    expect([...rooms].filter((r) => !(r in DOORS)).sort()).toEqual([]);
  });

  it('no room imports a room it has no door to (except the open crossings listed)', () => {
    const bad = all
      .filter((c) => !(DOORS[c.fromRoom] ?? []).includes(c.toRoom))
      .map((c) => `${c.from} -> ${c.to}`)
      .filter((line) => !OPEN_CROSSINGS.includes(line));
    expect([...new Set(bad)].sort()).toEqual([]);
  });

  it('each open crossing still exists (remove it from the list once fixed)', () => {
    const lines = new Set(all.map((c) => `${c.from} -> ${c.to}`));
    expect(OPEN_CROSSINGS.filter((l) => !lines.has(l))).toEqual([]);
  });

  it('the door table has no circle, so the rooms stand on floors', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const circle: string[] = [];
    const visit = (room: string, path: string[]): void => {
      if (state.get(room) === 'done') return;
      if (state.get(room) === 'visiting') { circle.push([...path, room].join(' -> ')); return; }
      state.set(room, 'visiting');
      for (const below of DOORS[room] ?? []) visit(below, [...path, room]);
      state.set(room, 'done');
    };
    for (const room of Object.keys(DOORS)) visit(room, []);
    expect(circle).toEqual([]);
  });

  it('plugin/ reaches the daemon only through protocol/, which holds the wire alone (no side of it, no records)', () => {
    expect(DOORS.plugin).not.toContain('daemon');
    expect(DOORS.protocol.filter((r) => ['plugin', 'daemon', 'store', 'kernel'].includes(r))).toEqual([]);
  });

  it('reads imports in every form the sources use', () => {
    expect(specifiers("import { a } from '../x';\nexport type { b } from './y';\nimport './z';\nconst m = await import('../w');\nrequire('./v');"))
      .toEqual(['../x', './y', './z', '../w', './v']);
  });
});
