import { readSync } from 'node:fs';
import { parseCommand, parseEnv, type CniEnv } from './env';
import { CniError, ErrorCode, toErrorJson } from './errors';
import type { CniCommand, CniResult } from './types';
import { convertResult, CURRENT_VERSION, isSupportedVersion, requireSupportedVersion, requireVersionForCommand, versionInfo } from './version';
import { jsonDepth, MAX_JSON_DEPTH } from '../util/json-depth';

/** What every command handler receives: the parsed environment and the network config on stdin. */
export interface CniRequest {
  env: CniEnv;
  /** The network config exactly as received, for delegation to IPAM plugins. */
  rawConfig: string;
  config: Record<string, unknown>;
  cniVersion: string;
  /** The plugin's whole environment, handed on to delegated plugins (with CNI_* overridden) as pkg/invoke does. */
  rawEnv: Record<string, string | undefined>;
}

export interface PluginHandlers {
  add(req: CniRequest): Promise<CniResult>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  gc(req: CniRequest): Promise<void>;
  status(req: CniRequest): Promise<void>;
}

export interface SkelIo {
  env: Record<string, string | undefined>;
  readStdin(): Promise<string>;
  writeStdout(text: string): void;
  onError?(err: unknown, command: string): void;
}

export const MAX_STDIN_BYTES = 16 * 1024 * 1024;

function decodeConfig(raw: string): Record<string, unknown> {
  if (jsonDepth(raw) > MAX_JSON_DEPTH) {
    throw new CniError(ErrorCode.DecodingFailure, `network config on stdin nests arrays/objects deeper than ${MAX_JSON_DEPTH} levels; no network config needs that (check prevResult and runtimeConfig)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, `network config on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CniError(ErrorCode.DecodingFailure, 'network config on stdin must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

async function runCommand(command: CniCommand, handlers: PluginHandlers, io: SkelIo, rawConfig: string, config: Record<string, unknown>): Promise<string | undefined> {
  const cniVersion = requireSupportedVersion(config.cniVersion);
  requireVersionForCommand(command, cniVersion);
  const env = parseEnv(io.env);
  const req: CniRequest = { env, rawConfig, config, cniVersion, rawEnv: io.env };
  switch (command) {
    case 'ADD':
      return JSON.stringify(convertResult(await handlers.add(req), cniVersion));
    case 'DEL':
      await handlers.del(req);
      return undefined;
    case 'CHECK':
      await handlers.check(req);
      return undefined;
    case 'GC':
      await handlers.gc(req);
      return undefined;
    case 'STATUS':
      await handlers.status(req);
      return undefined;
    default:
      throw new CniError(ErrorCode.InvalidEnvironment, `unexpected command ${command}`);
  }
}

/** The plugin's skeleton (like libcni's skel): returns the process exit code; stdout gets only the result or the error object. */
export async function dispatch(handlers: PluginHandlers, io: SkelIo): Promise<number> {
  let errorVersion = CURRENT_VERSION;
  let commandName = io.env.CNI_COMMAND ?? '';
  try {
    const command = parseCommand(io.env);
    commandName = command;
    const rawConfig = await io.readStdin();
    if (command === 'VERSION') {
      io.writeStdout(JSON.stringify(versionInfo()));
      return 0;
    }
    const config = decodeConfig(rawConfig);
    if (isSupportedVersion(config.cniVersion)) errorVersion = config.cniVersion;
    const output = await runCommand(command, handlers, io, rawConfig, config);
    if (output !== undefined) io.writeStdout(output);
    return 0;
  } catch (err) {
    io.onError?.(err, commandName);
    io.writeStdout(JSON.stringify(toErrorJson(err, errorVersion)));
    return 1;
  }
}

/** Reads all of stdin, refusing more than MAX_STDIN_BYTES. */
export async function readStream(stream: NodeJS.ReadableStream, limit = MAX_STDIN_BYTES): Promise<string> {
  return (await collect(stream, limit, [], 0)).toString('utf8');
}

function tooLarge(limit: number): CniError {
  return new CniError(ErrorCode.DecodingFailure, `network config on stdin is larger than ${limit} bytes`);
}

async function collect(stream: NodeJS.ReadableStream, limit: number, chunks: Buffer[], total: number): Promise<Buffer> {
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/**
 * All of stdin, as readStream, but read synchronously from the descriptor: the plugin has nothing else to do
 * meanwhile, and process.stdin's stream machinery costs more at start-up than the rest of a VERSION (callgrind,
 * about 20M instructions). A non-blocking descriptor (EAGAIN) goes on through `stream`.
 */
export async function readStdin(limit = MAX_STDIN_BYTES, fd = 0, stream: () => NodeJS.ReadableStream = () => process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EOF') break;
      if (code !== 'EAGAIN') throw err;
      return (await collect(stream(), limit, chunks, total)).toString('utf8');
    }
    if (n === 0) break;
    total += n;
    if (total > limit) throw tooLarge(limit);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}
