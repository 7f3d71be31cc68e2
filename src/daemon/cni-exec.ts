import { CniError, toErrorJson } from '../cni/errors';
import { dispatch, type PluginHandlers } from '../cni/skel';
import { CURRENT_VERSION } from '../cni/version';
import { DEFAULT_DAEMON_SOCKET, NODE_CONFIG_ENV } from '../config/defaults';
import { nodeConfigPath } from '../config/node-file-read';
import type { NetConf } from '../config/load';
import type { LogSettings, Logger } from '../log';
import type { Attachment } from '../store/attachments';
import { type Deps, pluginHandlers } from '../plugin';
import { configuredDpus } from '../plugin/dpu-client';
import { requestScope } from '../util/request-scope';
import { networkOfRecord } from './record-network';
import { logConfigError } from '../plugin/config-error-log';
import { commandBoundMs } from '../protocol/deadlines';
import { FORWARDED } from './forward';
import { fileIdOf } from '../protocol/framing';
import { type CniForwardRequest, type CniForwardResponse, MAX_CNI_STDERR_BYTES } from '../protocol/operations';

/** ADD, DEL and CHECK of one attachment run one at a time, in arrival order; GC and STATUS cope with in-flight records. */
const SERIALISED_COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK'];

export interface CniExecOptions {
  /** The socket the daemon listens on: a config naming another (or "") is not the daemon's to run. */
  socketPath: string;
  /** The daemon's network namespace (protocol/framing.ts netnsId). */
  netns: string;
  /** The plugin's boundaries for commands run here (runner, in-process DPU client, per-command loggers). */
  deps: Required<Pick<Deps, 'runner' | 'dpuClient' | 'logger'>> & Pick<Deps, 'observeSteps' | 'nodeConfig' | 'links'>;
  /** Where a config error (before the command has a logger) is logged; default: deps.logger. */
  configErrorLogger?(settings: LogSettings): Logger;
  /** Called once per command the daemon ran (not refused): its CNI error code (0: success) and duration. */
  onCompleted?(command: string, code: number, seconds: number): void;
  /** Tests substitute handlers; production runs the plugin's. */
  handlers?(deps: Deps): PluginHandlers;
}

/** Thrown from the admit hook: nothing has been done, the plugin runs the command itself. */
class Refused extends Error {}

type Send = (res: CniForwardResponse) => void;

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** The CNI error code of a command's outcome: 0 on success, else the code of the error JSON it printed. */
export function cniCodeOf(exitCode: number, stdout: string): number {
  if (exitCode === 0) return 0;
  try {
    const code = (JSON.parse(stdout) as { code?: unknown }).code;
    return typeof code === 'number' ? code : exitCode;
  } catch {
    return exitCode;
  }
}

/** The daemon side of forwarded CNI commands: each runs in-process through the plugin's own skeleton and handlers. */
export class CniExecutor {
  /** The last queued command of each serialised attachment. */
  private readonly tails = new Map<string, Promise<void>>();
  /** The command of each attachment's queued job that is running now. */
  private readonly started = new Map<string, string>();
  private readonly running = new Set<Promise<void>>();
  private closing = false;

  constructor(private readonly opts: CniExecOptions) {}

  /** Answers one cni request through send; gone() tells whether the plugin has hung up. */
  handle(raw: Partial<CniForwardRequest>, send: Send, gone: () => boolean): void {
    const id = typeof raw.id === 'number' ? raw.id : 0;
    const refuse = (why: string) => send({ id, refused: why });
    if (!isStringRecord(raw.env) || typeof raw.stdin !== 'string' || typeof raw.netns !== 'string') return refuse('malformed cni request (env, stdin and netns are required)');
    if (this.closing) return refuse('the daemon is shutting down');
    if (raw.netns !== this.opts.netns) return refuse(`the plugin runs in another network namespace (${raw.netns}) than the daemon (${this.opts.netns}); run one daemon in each host network namespace`);
    const env = raw.env;
    if (raw.cniNetns !== undefined && (!env.CNI_NETNS || fileIdOf(env.CNI_NETNS) !== raw.cniNetns)) {
      return refuse(`CNI_NETNS ${env.CNI_NETNS ?? ''} is not the same file for the daemon as for the plugin (the runtime has a mount namespace of its own)`);
    }
    if (raw.nodeFile !== undefined) {
      const problem = this.nodeFileProblem(env, raw.nodeFile);
      if (problem) return refuse(problem);
    }
    const command = env.CNI_COMMAND ?? '';
    if (!FORWARDED.has(command)) return refuse(`command ${JSON.stringify(command)} is not run by the daemon`);
    const stdin = raw.stdin;
    const key = SERIALISED_COMMANDS.includes(command) ? JSON.stringify([env.CNI_CONTAINERID ?? '', env.CNI_IFNAME ?? '']) : undefined;
    const run = () => this.execute(id, env, stdin, send, gone);
    let job: Promise<void>;
    // An ADD or CHECK arriving while an ADD of the same attachment runs is answered at once, as the standalone plugin
    // answers it (11: that ADD is in flight), instead of waiting for an ADD that may be waiting for it (a runtime
    // retrying). A DEL waits for the ADD and then cleans up.
    if (key === undefined || (this.started.get(key) === 'ADD' && command !== 'DEL')) {
      job = run();
    } else {
      const queued = async () => {
        this.started.set(key, command);
        try {
          await run();
        } finally {
          this.started.delete(key);
        }
      };
      job = (this.tails.get(key) ?? Promise.resolve()).then(queued);
      this.tails.set(key, job);
      void job.finally(() => {
        if (this.tails.get(key) === job) this.tails.delete(key);
      });
    }
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
  }

  /** Why the node file the daemon would read is not the plugin's, or undefined. */
  private nodeFileProblem(env: Record<string, string>, plugins: string): string | undefined {
    let path: string;
    try {
      path = nodeConfigPath(env, this.opts.deps.nodeConfig);
    } catch (err) {
      return (err as Error).message;
    }
    if ((fileIdOf(path) ?? '') === plugins) return undefined;
    return `the node file ${path} is not the same file for the daemon as for the plugin (a runtime with a mount namespace of its own, or the daemon's --node-config names another; set ${NODE_CONFIG_ENV} for both)`;
  }

  /** Why a loaded config is not this daemon's to run, or undefined. */
  private refusalFor(conf: NetConf): string | undefined {
    const sockets = configuredDpus(conf).map((c) => c.dpu.daemonSocket);
    if (sockets.length === 0) sockets.push(DEFAULT_DAEMON_SOCKET);
    const other = sockets.find((s) => s !== this.opts.socketPath);
    if (other === undefined) return undefined;
    return other === '' ? 'the network config sets dpu.daemonSocket to "" (standalone)' : `the network config names daemon socket ${other}, not this daemon's ${this.opts.socketPath}`;
  }

  private async execute(id: number, env: Record<string, string>, stdin: string, send: Send, gone: () => boolean): Promise<void> {
    // A plugin that hung up before its command started may be running it itself.
    if (gone()) return;
    let stdout = '';
    let stderr = '';
    const captureStderr = (text: string) => {
      if (stderr.length < MAX_CNI_STDERR_BYTES) stderr += text.slice(0, MAX_CNI_STDERR_BYTES - stderr.length);
    };
    let refusal: string | undefined;
    let accepted = false;
    const deps: Deps = {
      ...this.opts.deps,
      stderr: captureStderr,
      admit: (conf) => {
        refusal = this.refusalFor(conf) ?? (gone() ? 'the plugin hung up' : undefined);
        if (refusal) throw new Refused(refusal);
        accepted = true;
        send({ id, accepted: true, boundMs: commandBoundMs(configuredDpus(conf).map((c) => c.dpu)) });
      },
    };
    const handlers = (this.opts.handlers ?? pluginHandlers)(deps);
    const t0 = performance.now();
    try {
      const exitCode = await requestScope.run({ env, stderr: captureStderr }, () =>
        dispatch(handlers, {
          env,
          readStdin: async () => stdin,
          writeStdout: (text) => void (stdout += text + '\n'),
          onError: (err, command) => {
            if (!(err instanceof Refused)) logConfigError(err, command, { ...env, DPU_OVERLAY_NODE_CONFIG: process.env.DPU_OVERLAY_NODE_CONFIG }, (settings) => this.opts.configErrorLogger?.(settings) ?? this.opts.deps.logger(settings as NetConf, {}));
            if (!(err instanceof CniError) && !(err instanceof Refused)) captureStderr(`dpu-overlay ${command}: unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
          },
        }),
      );
      if (!refusal) this.opts.onCompleted?.(env.CNI_COMMAND ?? '', cniCodeOf(exitCode, stdout), (performance.now() - t0) / 1000);
      send(refusal ? { id, refused: refusal } : { id, ok: true, exitCode, stdout, stderr });
    } catch (err) {
      // dispatch answers every error itself; this is the daemon failing around it.
      const msg = `dpu-overlay daemon: ${err instanceof Error ? err.message : String(err)}`;
      send(accepted ? { id, ok: true, exitCode: 1, stdout: JSON.stringify(toErrorJson(new Error(msg), CURRENT_VERSION)) + '\n', stderr } : { id, refused: msg });
    }
  }

  /**
   * Releases a recorded attachment whose container is gone by running the plugin's DEL for it in-process, as the
   * runtime's DEL would (host side, IPAM, DPU port, record), queued behind any command of the same attachment.
   */
  releaseGone(att: Pick<Attachment, 'containerId' | 'ifname' | 'rawConfig' | 'cniPath' | 'vni' | 'dpu'>, stillGone: () => boolean = () => true): Promise<void> {
    const env: Record<string, string> = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: att.containerId, CNI_IFNAME: att.ifname, CNI_NETNS: '', CNI_PATH: att.cniPath.join(':') };
    for (const k of ['DPU_OVERLAY_NODE_CONFIG', 'PATH']) if (process.env[k] !== undefined) env[k] = process.env[k] as string;
    // the record keeps only the IPAM keys of ADD's config: DEL's network config is rebuilt from the record
    const config = JSON.stringify(networkOfRecord(att));
    const key = JSON.stringify([att.containerId, att.ifname]);
    let outcome: { exitCode: number; stdout: string } = { exitCode: 1, stdout: '' };
    // Never rejects: the next command queued behind it for this attachment must still run.
    const run = async () => {
      let stdout = '';
      try {
        // Asked when its turn comes: a command queued before it may have made the attachment live again.
        if (!stillGone()) {
          outcome = { exitCode: 0, stdout: '' };
          return;
        }
        const handlers = (this.opts.handlers ?? pluginHandlers)({ ...this.opts.deps, stderr: () => undefined });
        const exitCode = await requestScope.run({ env, stderr: () => undefined }, () =>
          dispatch(handlers, { env, readStdin: async () => config, writeStdout: (text) => void (stdout += text), onError: () => undefined }),
        );
        outcome = { exitCode, stdout };
      } catch (err) {
        outcome = { exitCode: 1, stdout: (err as Error).message };
      }
    };
    const job = (this.tails.get(key) ?? Promise.resolve()).then(run);
    this.tails.set(key, job);
    this.running.add(job);
    void job.finally(() => {
      this.running.delete(job);
      if (this.tails.get(key) === job) this.tails.delete(key);
    });
    return job.then(() => {
      if (outcome.exitCode !== 0) throw new Error(`DEL failed: ${outcome.stdout.trim()}`);
    });
  }

  /** Refuses new commands and waits for the ones running (their plugins are still connected and waiting). */
  async drain(): Promise<void> {
    this.closing = true;
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
