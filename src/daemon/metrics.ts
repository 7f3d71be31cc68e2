import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds buckets from a fast host step (1 ms) to an OVN ADD waiting for its port (30 s). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the daemon knows at scrape time: read then, never kept in step with every change. */
export interface MetricsSource {
  /** Each DPU the daemon holds a connection for: user@host:port and whether it is connected. */
  dpus(): Array<{ dpu: string; connected: boolean }>;
  /** Attachments recorded under the daemon's stateDirs (ready or being added), counted by network and VNI. */
  attachments(): Array<{ network: string; vni: number; count: number }>;
}

/** How long one reading of the records serves scrapes of dpu_overlay_attachments. */
export const ATTACHMENTS_TTL_MS = 1000;

/**
 * Limits of the metrics server, which any local user can reach: connections held open (slowloris) or huge
 * requests must not cost the daemon more than this; a client that is slower is cut off.
 */
export const METRICS_LIMITS: { maxConnections: number; headersTimeoutMs: number; requestTimeoutMs: number; idleTimeoutMs: number; maxHeaderSize: number } = { maxConnections: 64, headersTimeoutMs: 5000, requestTimeoutMs: 10000, idleTimeoutMs: 10000, maxHeaderSize: 8192 };

/** The daemon's Prometheus series. Served only when the daemon is started with --metrics-address. */
export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'dpu_overlay_cni_requests_total', help: 'CNI commands the daemon ran, by command and CNI error code ("0": success)', labelNames: ['command', 'code'], registers: [this.registry] });
  private readonly duration = new Histogram({ name: 'dpu_overlay_cni_request_duration_seconds', help: 'Time the daemon took to run a CNI command', labelNames: ['command'], buckets: BUCKETS, registers: [this.registry] });
  private readonly steps = new Histogram({ name: 'dpu_overlay_cni_step_duration_seconds', help: 'Time of each step of a CNI command (the steps of its closing log line)', labelNames: ['command', 'step'], buckets: BUCKETS, registers: [this.registry] });
  private readonly roundTrip = new Histogram({ name: 'dpu_overlay_dpu_round_trip_seconds', help: 'Time of one DPU operation over the daemon\'s SSH connection, by DPU and operation', labelNames: ['dpu', 'op'], buckets: BUCKETS, registers: [this.registry] });
  private readonly replugs = new Counter({ name: 'dpu_overlay_dpu_replugs_total', help: 'Attachments the daemon re-plugged after a DPU reboot, database reset or lost port', labelNames: ['dpu'], registers: [this.registry] });

  private counted: { at: number; value: ReturnType<MetricsSource['attachments']> } | undefined;

  constructor(source: MetricsSource, now: () => number = () => performance.now()) {
    // The attachment count reads every record from disk, on the daemon's event loop: anyone who can reach the
    // port may scrape in a loop, so it is read at most once per ATTACHMENTS_TTL_MS whatever the scrape rate,
    // and again after each command of this daemon (standalone commands show within the TTL).
    const attachments = () => {
      const t = now();
      if (!this.counted || t - this.counted.at >= ATTACHMENTS_TTL_MS) this.counted = { at: t, value: source.attachments() };
      return this.counted.value;
    };
    new Gauge({
      name: 'dpu_overlay_dpu_connected', help: '1 while the daemon\'s SSH connection to the DPU is up', labelNames: ['dpu'], registers: [this.registry],
      collect() {
        this.reset();
        for (const d of source.dpus()) this.set({ dpu: d.dpu }, d.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dpu_overlay_attachments', help: 'Attachments recorded on this node, by network and VNI', labelNames: ['network', 'vni'], registers: [this.registry],
      collect() {
        this.reset();
        for (const a of attachments()) this.set({ network: a.network, vni: String(a.vni) }, a.count);
      },
    });
  }

  cniRequest(command: string, code: number, seconds: number): void {
    this.counted = undefined;
    this.requests.inc({ command, code: String(code) });
    this.duration.observe({ command }, seconds);
  }

  cniSteps(command: string, stepsMs: Readonly<Record<string, number>>): void {
    for (const [step, ms] of Object.entries(stepsMs)) this.steps.observe({ command, step }, ms / 1000);
  }

  dpuRoundTrip(dpu: string, op: string, seconds: number): void {
    this.roundTrip.observe({ dpu, op }, seconds);
  }

  replugged(dpu: string): void {
    this.replugs.inc({ dpu });
  }
}

export interface MetricsAddress {
  host: string;
  port: number;
}

/** HOST:PORT or [IPv6]:PORT. */
export function parseMetricsAddress(text: string): MetricsAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new Error(`--metrics-address must be HOST:PORT such as 127.0.0.1:9741 (got ${JSON.stringify(text)})`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/**
 * GET /metrics (Prometheus text format) and GET /healthz: 200 "ok" while health() returns nothing, else 503 with
 * the reason (the DaemonSet's probes: no node file, socket not served).
 */
export async function serveMetrics(address: MetricsAddress, metrics: DaemonMetrics, health: () => string | undefined, limits: typeof METRICS_LIMITS = METRICS_LIMITS): Promise<Server> {
  const server = createServer({ maxHeaderSize: limits.maxHeaderSize, requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs) }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(err as Error).message}\n`),
      );
    } else if (path === '/healthz') {
      const problem = health();
      res.writeHead(problem ? 503 : 200, { 'Content-Type': 'text/plain' }).end(problem ? `${problem}\n` : 'ok\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: GET /metrics or /healthz\n');
    }
  });
  // At the cap the oldest connection goes, not the new one: a local user holding connections open must not keep
  // the kubelet's probe (also from 127.0.0.1) out, which would get the daemon restarted.
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    if (open.size > limits.maxConnections) open.values().next().value?.destroy();
  });
  server.keepAliveTimeout = limits.headersTimeoutMs;
  // a connection that sends nothing at all is closed too
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, resolve);
  });
  return server;
}
