// What every child of the bench gets: PATH and the CNI_* variables, nothing inherited. A runtime's environment
// leaking into a Node plugin costs start-up time (NODE_EXTRA_CA_CERTS: the bundle is read and parsed on every
// start) or changes what runs (the SEA obeys NODE_OPTIONS); the bench measures each once, on purpose.
export const SCRUBBED_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PATH plus the CNI_* entries of `env` and the node file's path (as a runtime sets them); anything else is dropped. */
export function scrubbedEnv(env: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { PATH: SCRUBBED_PATH };
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') || k === 'DPU_OVERLAY_NODE_CONFIG') out[k] = v;
  return out;
}

/** The two inherited variables the README warns operators about, with values as harmless as they get. */
export const ENV_EFFECTS: Array<{ name: string; env: Record<string, string> }> = [
  { name: 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', env: { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' } },
  { name: 'NODE_OPTIONS=--max-old-space-size=512', env: { NODE_OPTIONS: '--max-old-space-size=512' } },
];
