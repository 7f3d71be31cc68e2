import { IPAM_TYPE } from '../../src/cni/invoke';
import { ABSOLUTE_PATH, MAC_ADDRESS, NETDEV_NAME, NETWORK_NAME, OVN_SWITCH_PREFIX, PCI_ADDRESS } from '../../src/config/schema';

/**
 * Reads what the reference needs (type, default, required) out of zod 4 schema objects. zod has no public
 * introspection API for this; the `_zod.def` shapes used here are those of zod 4.1.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Schema = any;

const WRAPPERS = ['optional', 'default', 'prefault', 'nullable', 'readonly'];

const NAMED_PATTERNS: Array<[RegExp, string]> = [
  [NETDEV_NAME, 'netdev name (≤ 15 bytes)'],
  [PCI_ADDRESS, 'PCI address `0000:03:00.2`'],
  [MAC_ADDRESS, 'MAC `02:00:00:00:00:01`'],
  [ABSOLUTE_PATH, 'absolute path'],
  [NETWORK_NAME, 'letter or digit, then letters, digits, `_` `.` `-`'],
  [IPAM_TYPE, 'plugin file name in `CNI_PATH`'],
  [OVN_SWITCH_PREFIX, 'a letter + ≤ 31 of `[A-Za-z0-9_.-]`, not ending in a digit'],
];

export interface FieldFacts {
  schema: Schema;
  optional: boolean;
  /** JSON of the default, when zod fills one in. */
  defaultValue?: unknown;
}

export function unwrap(schema: Schema): FieldFacts {
  let t = schema;
  let optional = false;
  let defaultValue: unknown;
  while (WRAPPERS.includes(t._zod.def.type)) {
    if (t._zod.def.type !== 'nullable' && t._zod.def.type !== 'readonly') optional = true;
    if (t._zod.def.type === 'default' || t._zod.def.type === 'prefault') defaultValue ??= t._zod.def.defaultValue;
    t = t._zod.def.innerType;
  }
  return { schema: t, optional, defaultValue };
}

function checks(t: Schema): Array<Record<string, unknown>> {
  return ((t._zod.def.checks ?? []) as Schema[]).map((c) => c._zod.def as Record<string, unknown>);
}

function stringType(t: Schema): string {
  const cs = checks(t);
  const format = (t._zod.def.format ?? cs.find((c) => c.check === 'string_format')?.format) as string | undefined;
  if (format === 'ipv4') return 'IPv4 address';
  if (format === 'ipv6') return 'IPv6 address';
  const pattern = cs.find((c) => c.check === 'string_format' && c.format === 'regex')?.pattern as RegExp | undefined;
  const max = cs.find((c) => c.check === 'max_length')?.maximum as number | undefined;
  const named = pattern && NAMED_PATTERNS.find(([re]) => re.source === pattern.source)?.[1];
  const base = named ?? (pattern ? `string \`/${pattern.source.replace(/\|/g, '\\|')}/\`` : 'string');
  return max !== undefined && !named?.includes('≤') && !(named === 'absolute path') ? `${base}, ≤ ${max} chars` : base;
}

function numberType(t: Schema): string {
  const base = t._zod.def.format === 'safeint' || t.format === 'safeint' ? 'integer' : 'number';
  const min = t.minValue as number | null;
  const max = t.maxValue as number | null;
  const bounded = (v: number | null) => v !== null && Number.isFinite(v) && Math.abs(v) < Number.MAX_SAFE_INTEGER;
  if (bounded(min) && bounded(max)) return `${base} ${min}–${max}`;
  if (bounded(min)) return `${base} ≥ ${min}`;
  if (bounded(max)) return `${base} ≤ ${max}`;
  return base;
}

/** A short human-readable type, in markdown, for a table cell. */
export function typeOf(schema: Schema): string {
  const t = unwrap(schema).schema;
  switch (t._zod.def.type as string) {
    case 'string': return stringType(t);
    case 'number': return numberType(t);
    case 'boolean': return 'boolean';
    case 'enum': return (t.options as string[]).map((o) => `\`${o}\``).join(' \\| ');
    case 'literal': return (t._zod.def.values as unknown[]).map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
    case 'union': {
      const parts = (t._zod.def.options as Schema[]).map(typeOf);
      if (parts.length === 2 && parts.includes('IPv4 address') && parts.includes('IPv6 address')) return 'IP address';
      return parts.join(', or ');
    }
    case 'array': {
      const max = checks(t).find((c) => c.check === 'max_length')?.maximum;
      const min = checks(t).find((c) => c.check === 'min_length')?.minimum;
      return `list of ${typeOf(t._zod.def.element)}${min !== undefined || max !== undefined ? ` (${min ?? 0}–${max ?? '∞'})` : ''}`;
    }
    case 'record': return `object: ${typeOf(t._zod.def.keyType)} → ${t._zod.def.valueType._zod.def.type === 'object' ? 'object' : typeOf(t._zod.def.valueType)}`;
    case 'object': return 'object';
    default: return String(t._zod.def.type);
  }
}

/** The object's fields, for objects the reference documents field by field. */
export function shapeOf(schema: Schema): Record<string, Schema> | undefined {
  const t = unwrap(schema).schema;
  return t._zod.def.type === 'object' ? (t._zod.def.shape as Record<string, Schema>) : undefined;
}
