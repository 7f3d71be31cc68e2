/**
 * Host-overhead harness (the paper's section IV / Fig. 4): for each mode and count of container pairs, iperf3
 * between the pairs with stress hogs on every host core, and the host cores' CPU share, interrupts, softirqs
 * and context switches per Gbit transferred.
 *
 *   npm run bench:overhead -- [--modes host,host-overlay,dpu] [--pairs 1,2,5,10,20] [--seconds 10]
 *                             [--out build/overhead] [--hosts hosts.json] [--host-cores 1] [--dpu-cores 0]
 *
 * Without --hosts it runs on the emulated testbed (brought up and torn down by the harness, prefix
 * DPUO_TESTBED_PREFIX). Progress goes to stderr; results.json, results.md and fig4.svg to --out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cleanup } from './cleanup';
import { EmulatedEnvironment, realEnvironment, repoRoot, type Environment } from './env';
import { Processes } from './exec';
import { measure, type Sample } from './measure';
import { MODES, SETUP, type HostOverlayDatapath, type ModeName } from './modes';
import { fig4Svg, markdownTable, type Results } from './report';

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
}

const USAGE = `usage: npm run bench:overhead -- [--modes ${MODES.join(',')}] [--pairs 1,2,5,10,20] [--seconds N]
       [--out DIR] [--hosts CONFIG.json] [--host-cores LIST] [--dpu-cores LIST] [--binary PATH]
       [--host-overlay auto|kernel|ovs]`;

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

class UsageRequest extends Error {}

const t0 = Date.now();
function log(line: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`[overhead ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}] ${line}\n`);
}

function summary(s: Sample): string {
  return (
    `${s.mode} ${s.pairs} pair(s): ${s.throughputGbps.toFixed(2)} Gbit/s, hogs ${(s.host.hogShare * 100).toFixed(1)}% ` +
    `(%usr ${(s.host.userShare * 100).toFixed(1)}), ${s.perGbit.interrupts.toFixed(0)} irq/Gbit, ${s.perGbit.contextSwitches.toFixed(0)} cs/Gbit` +
    (s.dpuCores ? `, DPU core busy ${(s.dpuCores.busyShare * 100).toFixed(0)}%` : '')
  );
}

async function writeResults(o: Options, r: Results): Promise<void> {
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'results.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(o.out, 'results.md'), markdownTable(r));
  if (r.samples.length) writeFileSync(join(o.out, 'fig4.svg'), await fig4Svg(r));
}

async function main(): Promise<number> {
  const cpus = Number((await new Processes().check(['nproc', '--all'])).trim());
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2), cpus);
  } catch (e) {
    if (e instanceof UsageRequest) {
      process.stderr.write(`${USAGE}\n`);
      return 0;
    }
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const procs = new Processes();
  const cleanup = new Cleanup(log);
  const env: Environment = o.hosts
    ? await realEnvironment(procs, o.hosts)
    : new EmulatedEnvironment(procs, { hostCores: o.hostCores, dpuCores: o.dpuCores, binary: o.binary });
  const results: Results = {
    tool: 'dpu-overlay bench overhead',
    command: `npm run bench:overhead -- ${process.argv.slice(2).join(' ')}`.trim(),
    environment: { kind: env.kind, description: env.description, notes: env.notes, realisation: {}, hostCores: env.nodes[0].hostCores, dpuCores: env.dpuCores },
    params: { modes: o.modes, pairs: o.pairs, seconds: o.seconds, iperfBuffer: '8K' },
    startedAt: new Date().toISOString(),
    finishedAt: '',
    samples: [],
  };

  let aborting = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (aborting) return;
    aborting = true;
    log(`${sig}: stopping and tearing everything down`);
    void (async () => {
      await procs.abort();
      await cleanup.runDownTo(0);
      log(`torn down; ${results.samples.length} sample(s) were complete (not written)`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  log(env.description);
  try {
    log('preparing the environment');
    await env.prepare(Math.max(...o.pairs), cleanup);
    const total = o.modes.length * o.pairs.length;
    for (const mode of o.modes) {
      for (const pairs of o.pairs) {
        const mark = cleanup.mark();
        log(`(${results.samples.length + 1}/${total}) ${mode}, ${pairs} pair(s): setting up`);
        const setup = await SETUP[mode]({ env, procs, cleanup, log, hostOverlay: o.hostOverlay }, pairs);
        results.environment.realisation[mode] = setup.realisation;
        log(`(${results.samples.length + 1}/${total}) ${mode}, ${pairs} pair(s): measuring for ${o.seconds} s`);
        const sample = await measure(procs, env, mode, setup, o.seconds);
        results.samples.push(sample);
        log(summary(sample));
        await cleanup.runDownTo(mark);
      }
    }
    results.finishedAt = new Date().toISOString();
    await cleanup.runDownTo(0);
    await writeResults(o, results);
    log(`wrote ${join(o.out, 'results.json')}, results.md and fig4.svg`);
    process.stderr.write(markdownTable(results));
    process.stdout.write(`${JSON.stringify(results)}\n`);
    return 0;
  } catch (e) {
    if (aborting) return new Promise<number>(() => undefined); // the signal handler exits
    log(`failed: ${(e as Error).message}`);
    await procs.killAll();
    await cleanup.runDownTo(0);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
