import type { CniRequest } from '../cni/skel';
import type { DpuClient } from '../dpu/api';
import { DpuClients, dpuOfRecord } from './dpu-client';
import type { DpuConfig } from '../config/schema';
import { loadNetConf, type NetConf } from '../config/load';
import { unknownFieldsWarning } from '../config/aliases';
import { nodeConfigPath, readNodeFile } from '../config/node-file';
import { IpamDelegate, type IpamCall } from '../cni/invoke';
import { LinkOps } from '../kernel/iproute2';
import type { CommandRunner } from '../util/command-runner';
import { type Attachment, InvalidRecordError, isInFlight, StateStore } from '../store/attachments';
import { CniError, ErrorCode } from '../cni/errors';
import { storeErrorToCni } from './store-errors';
import { layerErrorToCni } from './layer-errors';
import { Sysfs } from '../kernel/sysfs';
import { createLogger, type Logger, StepTimer } from '../log';

/** The plugin's boundaries; tests substitute recording implementations. */
export interface Deps {
  runner: CommandRunner;
  dpuClient(conf: DpuConfig, log: Logger): DpuClient;
  logger?(conf: NetConf, bindings: Record<string, unknown>): Logger;
  /** Where delegated plugins' stderr goes (default: ours, which the runtime collects). */
  stderr?(text: string): void;
  /** The node file when the request's environment names none (DPU_OVERLAY_NODE_CONFIG): the daemon's --node-config. */
  nodeConfig?: string;
  /** Called once the config is loaded, before anything else: the daemon refuses (throws) or accepts the command here. */
  admit?(conf: NetConf): void;
  /** The host link operations (default: LinkOps, through `ip`); both paths pass host-links.ts's choice (log: the command's). */
  links?(runner: CommandRunner, log: Logger): LinkOps;
  /** Called with the step timings of the closing log line (the daemon's metrics). */
  observeSteps?(command: string, steps: Readonly<Record<string, number>>): void;
}

export interface Context {
  req: CniRequest;
  conf: NetConf;
  log: Logger;
  timer: StepTimer;
  state: StateStore;
  sysfs: Sysfs;
  links: LinkOps;
  ipam: IpamDelegate;
  deps: Deps;
}

export function prepare(req: CniRequest, deps: Deps): Context {
  const timer = new StepTimer();
  const node = readNodeFile(nodeConfigPath(req.rawEnv, deps.nodeConfig));
  const conf = loadNetConf(req.config, req.env.args, node);
  deps.admit?.(conf);
  const bindings = { command: req.env.command, containerId: req.env.containerId || undefined, ifname: req.env.ifname || undefined, network: conf.name };
  const log = deps.logger ? deps.logger(conf, bindings) : createLogger(conf, bindings);
  const ignored = unknownFieldsWarning(conf.unknownFields);
  if (ignored) log.warn(ignored);
  log.debug({ nodeConfig: node.path, keys: node.values ? Object.keys(node.values) : undefined }, node.values ? 'node file merged' : 'no node file');
  const state = new StateStore(conf.stateDir);
  return { req, conf, log, timer, state, sysfs: new Sysfs(conf.sysfsRoot), links: deps.links?.(deps.runner, log) ?? new LinkOps(deps.runner), ipam: new IpamDelegate(deps.runner, { env: req.rawEnv, stderr: deps.stderr ?? ((text) => void process.stderr.write(text)) }), deps };
}

/**
 * Runs a command body with the DPU clients (one per DPU it uses, all closed at the end) and a closing log line
 * with step timings. The DPU named by warm starts connecting right away so its handshake overlaps the host
 * steps; a connection failure surfaces where the body first uses that DPU.
 */
export async function withDpu<T>(ctx: Context, warm: DpuConfig | undefined, body: (dpus: DpuClients) => Promise<T>): Promise<T> {
  const dpus = new DpuClients((dpu) => ctx.deps.dpuClient(dpu, ctx.log));
  dpus.warm(warm);
  try {
    const out = await body(dpus);
    ctx.deps.observeSteps?.(ctx.req.env.command, ctx.timer.steps);
    ctx.log.info({ steps: ctx.timer.steps, totalMs: ctx.timer.totalMs(), dpuConnectMs: dpus.connectMs }, `${ctx.req.env.command} done`);
    return out;
  } catch (err) {
    const reported = layerErrorToCni(err);
    ctx.deps.observeSteps?.(ctx.req.env.command, ctx.timer.steps);
    ctx.log.error({ steps: ctx.timer.steps, totalMs: ctx.timer.totalMs(), err: (err as Error).message, code: (reported as { code?: number }).code, details: (err as { details?: string }).details || undefined }, `${ctx.req.env.command} failed`);
    throw err;
  } finally {
    dpus.close();
  }
}

/** The client of the DPU an attachment was plugged on (see dpuOfRecord); undefined when none is configured. */
export function recordedDpuClient(ctx: Context, att: Pick<Attachment, 'dpuKey' | 'dpu' | 'containerId' | 'ifname'>, dpus: DpuClients): DpuClient | undefined {
  const choice = dpuOfRecord(ctx.conf, att);
  if (!choice && att.dpu) ctx.log.warn({ containerId: att.containerId, ifname: att.ifname, dpu: att.dpu.target, dpusKey: att.dpuKey }, 'the config names no DPU this attachment was plugged on any more; its DPU port is left alone');
  return choice ? dpus.get(choice.dpu) : undefined;
}

export function ipamCall(att: Pick<Attachment, 'rawConfig' | 'containerId' | 'ifname' | 'cniPath'> & { ipamType: string }, netns: string, cniArgs: string, cniVersion: string): IpamCall {
  return { type: att.ipamType, cniPath: att.cniPath, rawConfig: att.rawConfig, containerId: att.containerId, netns, ifname: att.ifname, cniArgs, cniVersion };
}

/**
 * The network config an IPAM DEL of att gets: the runtime's DEL config (with its prevResult) when this is
 * a DEL naming the IPAM plugin ADD used; otherwise (GC, an ADD replacing an interrupted one, an IPAM type
 * changed since ADD) the config recorded at ADD, the only one that names what holds the address.
 */
export function delegatedDelConfig(ctx: Context, att: Pick<Attachment, 'rawConfig' | 'ipamType'>): string {
  return ctx.req.env.command === 'DEL' && ctx.conf.ipam?.type === att.ipamType ? ctx.req.rawConfig : att.rawConfig;
}

/** The record of containerId/ifname; an invalid one is a CNI error naming the file and the problem, never acted on. */
export function loadRecord(ctx: Context, containerId: string, ifname: string): Attachment | undefined {
  try {
    return ctx.state.loadAttachment(containerId, ifname);
  } catch (err) {
    if (err instanceof InvalidRecordError) throw storeErrorToCni(err);
    throw err;
  }
}

/** Code 11 (try again later): the runtime retries, and by then the running ADD has finished or failed. */
export function refuseInFlight(att: Attachment, what: string): void {
  if (isInFlight(att)) {
    throw new CniError(ErrorCode.TryAgainLater, `${what}: an ADD of ${att.ifname} in container ${att.containerId} is still running (pid ${att.owner?.pid}); try again later`);
  }
}
