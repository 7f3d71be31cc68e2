/**
 * The boundary between the harness and the machines it drives. Every command goes through a Node, which turns
 * an argv into the local argv that runs it there: `ip netns exec` on the emulated testbed, `ssh` on real hosts.
 * The modes and the measurement code only ever see Nodes, so both environments share the same code paths.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Where {
  /** run in this network namespace (a container) instead of the node's own */
  netns?: string;
  /** in the machine's initial namespaces (emulated hosts are netns; real hosts run there anyway) */
  root?: boolean;
  /** pin to the node's workload cores (the "host" cores) */
  pin?: boolean;
  env?: Record<string, string>;
}

export interface Node {
  readonly name: string;
  /** the cores whose counters are the host's: where workloads, hogs and (for host-overlay) encapsulation run */
  readonly hostCores: number[];
  /** an id of the machine; nodes that share one (the emulated hosts) share its cores and counters */
  readonly machine: string;
  /** local argv that runs `argv` on this node */
  command(argv: string[], where?: Where): string[];
}

function withEnv(argv: string[], env: Record<string, string> | undefined): string[] {
  if (!env || Object.keys(env).length === 0) return argv;
  return ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
}

/** An emulated host: a network namespace on this machine, its workload pinned to `hostCores` with taskset. */
export class NetnsNode implements Node {
  readonly machine = 'local';
  constructor(
    readonly name: string,
    private readonly netns: string,
    readonly hostCores: number[],
  ) {}

  command(argv: string[], where: Where = {}): string[] {
    const pin = where.pin ? ['taskset', '-c', this.hostCores.join(',')] : [];
    const netns = where.root && !where.netns ? [] : ['ip', 'netns', 'exec', where.netns ?? this.netns];
    return [...netns, ...pin, ...withEnv(argv, where.env)];
  }
}

/** POSIX shell quoting for a remote command line. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * A real host over SSH (key-based, BatchMode). `-tt` gives the remote command a terminal, so it gets SIGHUP
 * and ends when the harness kills the local ssh (teardown on Ctrl-C); its stderr then arrives on stdout.
 */
export class SshNode implements Node {
  constructor(
    readonly name: string,
    private readonly target: string,
    readonly hostCores: number[],
    private readonly sshOptions: string[] = [],
  ) {}

  get machine(): string {
    return this.target;
  }

  command(argv: string[], where: Where = {}): string[] {
    let inner = withEnv(argv, where.env);
    if (where.netns) inner = ['ip', 'netns', 'exec', where.netns, ...inner];
    return ['ssh', '-tt', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', ...this.sshOptions, this.target, '--', shellQuote(inner)];
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Started {
  readonly pid: number;
  readonly result: Promise<RunResult>;
  /** the first line of stdout, as soon as it is there ('' if the process ends without one) */
  readonly firstLine: Promise<string>;
  stop(): void;
}

/**
 * Runs and tracks every local process the harness starts, so that teardown (also on Ctrl-C) can end them all.
 * Long-running ones are started in their own process group and killed as a group.
 */
export class Processes {
  private readonly live = new Set<ChildProcess>();
  private aborted = false;

  start(argv: string[], input?: string): Started {
    if (this.aborted) {
      const result = Promise.resolve({ code: 130, stdout: '', stderr: 'aborted' });
      return { pid: -1, result, firstLine: Promise.resolve(''), stop: () => undefined };
    }
    const [file, ...args] = argv as [string, ...string[]];
    const child = spawn(file, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
    this.live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let gotLine: (line: string) => void = () => undefined;
    const firstLine = new Promise<string>((resolve) => (gotLine = resolve));
    child.stdout?.on('data', (d: Buffer) => {
      out.push(d);
      const text = Buffer.concat(out).toString('utf8');
      if (text.includes('\n')) gotLine(text.slice(0, text.indexOf('\n')));
    });
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    const result = new Promise<RunResult>((resolve) => {
      let failure = '';
      child.on('error', (e) => (failure = `${file}: ${e.message}\n`));
      child.on('close', (code, signal) => {
        this.live.delete(child);
        gotLine(Buffer.concat(out).toString('utf8').split('\n')[0] ?? '');
        resolve({ code: code ?? (signal ? 128 : 127), stdout: Buffer.concat(out).toString('utf8'), stderr: failure + Buffer.concat(err).toString('utf8') });
      });
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
    return { pid: child.pid ?? -1, result, firstLine, stop: () => killGroup(child, 'SIGTERM') };
  }

  async run(argv: string[], input?: string): Promise<RunResult> {
    return this.start(argv, input).result;
  }

  /** Runs and fails with the command's stderr unless it exits 0. */
  async check(argv: string[], input?: string): Promise<string> {
    const r = await this.run(argv, input);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    return r.stdout;
  }

  get count(): number {
    return this.live.size;
  }

  /** Refuses to start anything from now on and kills what runs (Ctrl-C). */
  async abort(): Promise<void> {
    this.aborted = true;
    await this.killAll();
  }

  /** SIGTERM every live process group, SIGKILL what is left after `graceMs`. */
  async killAll(graceMs = 2000): Promise<void> {
    const children = [...this.live];
    for (const c of children) killGroup(c, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (this.live.size > 0 && Date.now() < deadline) await sleep(20);
    for (const c of this.live) killGroup(c, 'SIGKILL');
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `argv` on `node` and returns stdout, failing with its stderr. */
export function onNode(procs: Processes, node: Node, argv: string[], where?: Where, input?: string): Promise<string> {
  return procs.check(node.command(argv, where), input);
}
