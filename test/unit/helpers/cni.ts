import { dispatch, type PluginHandlers } from '../../../src/cni/skel';

export interface CniOutcome {
  exitCode: number;
  /** Everything written to stdout, one entry per write. */
  writes: string[];
  /** The single JSON document written (undefined if none). */
  json?: Record<string, unknown>;
}

/** Runs the plugin's skeleton the way main.ts does, with env and stdin in memory. */
export async function runCni(handlers: PluginHandlers, env: Record<string, string | undefined>, stdin: string | Record<string, unknown>): Promise<CniOutcome> {
  const writes: string[] = [];
  const exitCode = await dispatch(handlers, {
    env,
    readStdin: async () => (typeof stdin === 'string' ? stdin : JSON.stringify(stdin)),
    writeStdout: (text) => void writes.push(text),
  });
  if (writes.length > 1) throw new Error(`more than one stdout write: ${JSON.stringify(writes)}`);
  return { exitCode, writes, json: writes[0] === undefined ? undefined : (JSON.parse(writes[0]) as Record<string, unknown>) };
}
