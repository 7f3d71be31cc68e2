/** Command line of the overhead harness. */
import { join, resolve } from 'node:path';
import { repoRoot } from './env';
import { MODES, type HostOverlayDatapath, type ModeName } from './modes';

export interface Options {
  modes: ModeName[];
  pairs: number[];
  seconds: number;
  out: string;
  hosts?: string;
  hostCores: number[];
  dpuCores: number[];
  binary: string;
  hostOverlay: HostOverlayDatapath;
  /** a markdown file (docs/benchmarks.md) whose results block to rewrite with this run's table and chart */
  readme?: string;
}

export const USAGE = `usage: npm run bench:overhead -- [--modes ${MODES.join(',')}] [--pairs 1,2,5,10,20] [--seconds N]
       [--out DIR] [--hosts CONFIG.json] [--host-cores LIST] [--dpu-cores LIST] [--binary PATH]
       [--host-overlay auto|kernel|ovs] [--readme docs/benchmarks.md]`;

function numbers(flag: string, v: string, min: number): number[] {
  const xs = v.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < min)) throw new Error(`${flag} takes a comma-separated list of integers >= ${min}`);
  return xs;
}

export function parseArgs(argv: string[], cpus: number): Options {
  const root = repoRoot();
  const o: Options = {
    modes: [...MODES],
    pairs: [1, 2, 5, 10, 20],
    seconds: 10,
    out: join(root, 'build', 'overhead'),
    hostCores: [cpus - 1],
    dpuCores: [0],
    binary: join(root, 'dist', 'dpu-overlay'),
    hostOverlay: 'auto',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--modes': {
        const modes = value().split(',');
        const bad = modes.filter((m) => !(MODES as readonly string[]).includes(m));
        if (bad.length) throw new Error(`unknown mode(s) ${bad.join(',')}; modes: ${MODES.join(',')}`);
        o.modes = modes as ModeName[];
        break;
      }
      case '--pairs': o.pairs = numbers(flag, value(), 1); break;
      case '--seconds': {
        const s = Number(value());
        if (!Number.isInteger(s) || s < 1) throw new Error('--seconds takes an integer >= 1');
        o.seconds = s;
        break;
      }
      case '--out': o.out = resolve(value()); break;
      case '--hosts': o.hosts = resolve(value()); break;
      case '--host-cores': o.hostCores = numbers(flag, value(), 0); break;
      case '--dpu-cores': o.dpuCores = numbers(flag, value(), 0); break;
      case '--binary': o.binary = resolve(value()); break;
      case '--readme': o.readme = resolve(value()); break;
      case '--host-overlay': {
        const v = value();
        if (v !== 'auto' && v !== 'kernel' && v !== 'ovs') throw new Error('--host-overlay takes auto, kernel or ovs');
        o.hostOverlay = v;
        break;
      }
      case '-h': case '--help': throw new UsageRequest();
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return o;
}

export class UsageRequest extends Error {}
