import { CniError, ErrorCode } from '../cni/errors';
import { DpuConfigSchema, NetConfSchema } from './schema';

/**
 * Conventions users bring from other plugins, applied to the raw network config before validation: sriov-cni's
 * spellings of the VF settings become the canonical names, and fields the plugin does not know are reported (the
 * CNI spec lets a plugin ignore them, but a misspelt rate limit that silently does nothing deserves a warning).
 * Pure: returns the rewritten config and the warnings; the caller logs them.
 */

/** sriov-cni's JSON names (its NetConf struct tags) for the settings this plugin spells in camelCase. */
export const SRIOV_CNI_ALIASES: Readonly<Record<string, string>> = {
  link_state: 'linkState',
  min_tx_rate: 'minTxRate',
  max_tx_rate: 'maxTxRate',
};

/** Fields the CNI spec or the runtimes put into a plugin's config that the schema does not validate itself. */
const CONVENTION_KEYS = new Set(['capabilities', 'dns', 'cni.dev/valid-attachments', 'cni.dev/attachments']);

export interface Conventions {
  config: Record<string, unknown>;
  /** Dotted paths of fields the plugin ignores (top level, dpu, dpus.<pf>), in input order. */
  unknownFields: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(obj: unknown, known: ReadonlySet<string>, prefix: string): string[] {
  return isObject(obj) ? Object.keys(obj).filter((k) => !known.has(k)).map((k) => `${prefix}${k}`) : [];
}

/** Maps the aliases to their canonical names; both spellings with different values is code 7. */
export function applyAliases(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const [alias, canonical] of Object.entries(SRIOV_CNI_ALIASES)) {
    if (!Object.hasOwn(raw, alias)) continue;
    const value = raw[alias];
    if (Object.hasOwn(raw, canonical) && JSON.stringify(raw[canonical]) !== JSON.stringify(value)) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${alias}: sriov-cni's spelling of ${canonical}, which is also set to another value; keep one of them`);
    }
    delete out[alias];
    out[canonical] = value;
  }
  return out;
}

export function applyConventions(raw: Record<string, unknown>): Conventions {
  const config = applyAliases(raw);
  const top = new Set([...Object.keys(NetConfSchema.shape), ...CONVENTION_KEYS]);
  const dpuKeys = new Set(Object.keys(DpuConfigSchema.shape));
  const dpus = isObject(config.dpus) ? Object.entries(config.dpus).flatMap(([pf, d]) => unknownKeys(d, dpuKeys, `dpus.${pf}.`)) : [];
  return { config, unknownFields: [...unknownKeys(config, top, ''), ...unknownKeys(config.dpu, dpuKeys, 'dpu.'), ...dpus] };
}

/** The one warning line for a command's ignored fields (undefined when there are none). */
export function unknownFieldsWarning(fields: readonly string[]): string | undefined {
  if (fields.length === 0) return undefined;
  const shown = fields.slice(0, 20).map((f) => JSON.stringify(f.slice(0, 80))).join(', ');
  return `ignored unknown config field${fields.length > 1 ? 's' : ''} ${shown}${fields.length > 20 ? ` and ${fields.length - 20} more` : ''}: check the spelling (see docs/configuration.md)`;
}
