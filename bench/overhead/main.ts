/**
 * Host-overhead harness (the paper's section IV / Fig. 4): for each mode and count of container pairs, iperf3
 * between the pairs with stress hogs on every host core, and the host cores' CPU share, interrupts, softirqs
 * and context switches per Gbit transferred.
 *
 *   npm run bench:overhead -- [--modes host,host-overlay,dpu] [--pairs 1,2,5,10,20] [--seconds 10]
 *                             [--out build/overhead] [--hosts hosts.json] [--host-cores 1] [--dpu-cores 0]
 *
 * Without --hosts it runs on the emulated testbed (brought up and torn down by the harness, prefix
 * DPUO_TESTBED_PREFIX). Progress goes to stderr; results.json, results.md and fig4.svg to --out. With --readme the
 * table goes into that file's results block instead of results.md, so that the figures stand in one place.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Cleanup } from './cleanup';
import { EmulatedEnvironment, realEnvironment, type Environment } from './env';
import { Processes } from './exec';
import { measure, type Sample } from './measure';
import { SETUP } from './modes';
import { parseArgs, UsageRequest, USAGE, type Options } from './options';
import { fig4Svg, markdownTable, README_BEGIN, readmeWithResults, type Results } from './report';

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
  if (!o.readme) writeFileSync(join(o.out, 'results.md'), markdownTable(r));
  if (r.samples.length) writeFileSync(join(o.out, 'fig4.svg'), await fig4Svg(r));
  if (o.readme) {
    writeFileSync(o.readme, readmeWithResults(readFileSync(o.readme, 'utf8'), r, relative(dirname(o.readme), join(o.out, 'fig4.svg'))));
  }
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
  if (o.readme && !readFileSync(o.readme, 'utf8').includes(README_BEGIN)) {
    process.stderr.write(`${o.readme} has no results block (${README_BEGIN})\n`);
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
    log(`wrote ${join(o.out, 'results.json')} and fig4.svg, and the table to ${o.readme ? `the results block of ${o.readme}` : 'results.md'}`);
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
