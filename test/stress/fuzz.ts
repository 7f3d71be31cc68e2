/**
 * Hostile input against the packaged binary (fast-check, seeded): mutated valid configs, wrong types,
 * out-of-range numbers, hostile strings in every string field, huge and deeply nested stdin, broken env vars,
 * unknown cniVersions. Each input runs inside an emulated host against the real DPU through a recording
 * forced command. Checked: one CNI error object with the expected code and no stack trace; inputs that are
 * legitimately valid succeed and are DEL-ed; afterwards the host is as before, no recorded DPU command and
 * nothing in OVS carries a hostile value.
 *
 * The inputs are a pure function of (seed, inputs) (fuzzCases): no other scenario, outcome or timing changes
 * them, so `--only=fuzz` and a full run at one seed try the same inputs, and `--index=N` or `--replay=FILE`
 * reruns one. The summary has one row per mutation kind.
 */
import fc from 'fast-check';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FIELD_OWNERSHIP, ownerOf, splitByOwner } from '../../src/config/ownership';
import { CNI_PATH, container, hostLocal, legacyConf, netConf, nodeEnv, type Site, type Testbed } from '../testkit/testbed';
import { MAX_JSON_DEPTH } from '../../src/util/json-depth';
import {
  diffLines, expectCniError, expectSuccess, forcedWrapper, hostSnapshot, newTally, type Outcome, ovsDump, ovsState, parallel, recordedCommands,
  runPlugin, runRecorded, type RunRecord, shape, stressDir, type Tally, timed, TRY_AGAIN, UNSET, violation,
} from './common';

const E = { version: 1, env: 4, decode: 6, config: 7 } as const;

/** Fragments that make any value invalid for the plugin's name/path/address patterns. */
const HOSTILE = [
  '$(touch /tmp/pwned)', '`id`', '; reboot', '| nc 127.0.0.1 9', '&& rm -rf /', '\n--', "'\"", '\u0000', ' -- del-br br-phy',
  '\u202e', 'é', '${IFS}', '>/etc/passwd', '\r\n', '%n%s', '../../etc/shadow', '*?[', '#', '\\', 'ovs-vsctl -- --all destroy Bridge',
] as const;

/**
 * Characters iproute2's batch reader treats specially (quotes, comment, continuation) and "@" (ip's
 * NAME@LINK syntax): legal in ifnames and CNI_ARGS values, so they must work there; refused elsewhere.
 */
const ODD = ['"', "'", '#', '\\', '@', '"x""netns"1', "'x'", 'e#x', 'x\\', `q'"#\\@`, '#\\', "'x' netns 1", 'a\x7f', '\u0085x', 'x\u009f'] as const;
const ODD_ENV = ['CNI_IFNAME', 'CNI_IFNAME', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_ARGS', 'CNI_PATH'] as const;

/** Config fields whose value is a string with a pattern; a hostile value there is code 7. */
const STRING_FIELDS = [
  'name', 'pf', 'mac', 'deviceID', 'pciBusID', 'spoofchk', 'trust', 'linkState', 'link_state', 'logLevel', 'ipam.type', 'dpu.host', 'dpu.user',
  'dpu.bridgePrefix', 'dpu.representorTemplate', 'dpu.localVtep', 'dpu.remoteVteps.0', 'dpu.hostKeyFingerprint', 'dpu.datapathType',
  'dpu.hwOffload', 'dpu.vfSettings', 'runtimeConfig.mac', 'runtimeConfig.deviceID', 'args.cni.mac',
] as const;
/** Path fields: a relative hostile value is code 7. */
const PATH_FIELDS = ['sysfsRoot', 'stateDir', 'logFile', 'nodeConfig', 'dpu.privateKeyFile', 'dpu.knownHostsFile'] as const;
/** Absolute paths the plugin only reads: a hostile one is a missing file, code 7, after ADD's host steps are undone. */
const READ_PATH_FIELDS = ['dpu.privateKeyFile', 'dpu.knownHostsFile'] as const;
const NUMBER_FIELDS: Record<string, readonly number[]> = {
  vni: [0, -1, 16777216, 1.5, 1e300, -1e300],
  mtu: [0, 67, 65536, 1450.5],
  pfIndex: [-1, 256, 0.5],
  vlan: [-1, 4095, 1.5],
  minTxRate: [-1, 0.1],
  maxTxRate: [-5, 2.5],
  // sriov-cni's spellings, read as minTxRate/maxTxRate
  min_tx_rate: [-1, 0.1],
  max_tx_rate: [-5, 2.5],
  'dpu.port': [0, 65536, -22, 22.5],
  'dpu.timeoutMs': [0, 99, 600001, 1000.5],
};
const WRONG_TYPES: readonly unknown[] = [123, -1, 1.5, true, false, null, [], {}, ['x'], { $: 1 }, [[[]]]];
const OBJECT_FIELDS = ['dpu', 'ipam', 'runtimeConfig', 'args', 'prevResult', 'dpu.remoteVteps'] as const;

type Mutation =
  | { kind: 'hostile-string'; field: string; pre: string; frag: string; post: string; long: number }
  | { kind: 'relative-path'; field: string; frag: string }
  | { kind: 'absolute-read-path'; field: string; frag: string }
  | { kind: 'wrong-type'; field: string; value: unknown }
  | { kind: 'number-range'; field: string; value: number }
  | { kind: 'cni-version'; value: unknown }
  | { kind: 'stdin-garbage'; text: string }
  | { kind: 'stdin-deep'; depth: number; wrapped: boolean }
  | { kind: 'stdin-huge'; mb: number }
  | { kind: 'env'; variable: string; how: string; frag: string }
  | { kind: 'odd-env'; variable: string; odd: string; pre: string }
  | { kind: 'benign'; how: 'type' | 'extra-field' | 'cni-args'; frag: string }
  | { kind: 'gc-list'; value: unknown }
  | { kind: 'pf-list'; how: 'duplicate' | 'empty' | 'too-many' | 'hostile-member' | 'unknown-pf'; frag: string }
  | { kind: 'dpus'; how: 'hostile-key' | 'proto-key' | 'entry-type' | 'entry-hostile'; frag: string }
  | { kind: 'node-file'; path: string }
  | { kind: 'vtep-family'; remote: string; at: number }
  | { kind: 'node-field'; field: string; same: boolean }
  | { kind: 'node-path'; field: string; path: string };

/**
 * nodeConfig may name any path: root-owned files that are not node files are refused without their content in the
 * message (the NAD's author reads the error); procfs files (size 0) unread; devices, FIFOs and directories unopened.
 */
const NODE_FILE_PATHS = ['/etc/shadow', '/etc/passwd', '/etc/hostname', '/proc/self/environ', '/proc/kmsg', '/proc/self/status', '/dev/zero', '/dev/null', '/dev/stdin', '/etc', '/proc/self/fd/0'] as const;
/** Text from those files that must never appear in an error message. */
const NODE_FILE_LEAKS = /root:|daemon:|PATH=|Name:\s/;

/** Malformed cni.dev/valid-attachments only: a well-formed list would make GC release the other inputs' attachments. */
const BAD_GC_LISTS = (frag: string): unknown[] => [
  frag, 1, {}, null, [null], [frag], [{}], [{ containerID: frag }], [{ ifname: 'eth0' }], [{ containerID: 1, ifname: 'eth0' }],
  [{ containerID: 'x'.repeat(257) + frag, ifname: 'eth0' }], [{ containerID: 'c', ifname: frag.repeat(65) }], [{ containerID: 'c', ifname: ['eth0'] }],
];

/** Node fields a network config sets (ownership.ts): refused (7) unless equal to the node's value. */
const NODE_FIELDS = FIELD_OWNERSHIP.filter((f) => f.owner === 'node' && f.field !== 'nodeConfig').map((f) => f.field);
/** Paths a tenant's config names for the root plugin to open: devices, a FIFO, shell rc files (fuzz() checks they stay unopened). */
export const FIFO_NAME = 'tenant.fifo';
const NODE_PATH_FIELDS = ['logFile', 'stateDir', 'sysfsRoot', 'nodeConfig'] as const;
const NODE_PATHS = ['/dev/ptmx', '/dev/watchdog', '/dev/null', FIFO_NAME, '/root/.bashrc', '/root/.profile', '/etc/profile'] as const;

/** A value for a node field that is not the node's, of the right shape where one is easy to give. */
function otherValue(field: string, marker: string): unknown {
  if (field === 'dpus') return { ens9f9: { host: `${marker}.example` } };
  if (field === 'dpu.remoteVteps') return ['198.18.0.77'];
  if (field === 'dpu.ovn') return { switchPrefix: 'tenant' };
  if (['pfIndex', 'dpu.port', 'dpu.timeoutMs'].includes(field)) return 7;
  if (['spoofchk', 'trust'].includes(field)) return 'off';
  if (field === 'dpu.representorTemplate') return 'pf0vf{pf}';
  return field.endsWith('File') || ['sysfsRoot', 'stateDir', 'dpu.daemonSocket'].includes(field) ? `/tmp/${marker}` : `${marker}x`;
}

function valueAt(obj: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined), obj);
}

const frag = fc.constantFrom(...HOSTILE);
const text = fc.string({ unit: 'binary', maxLength: 12 });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ kind: fc.constant('hostile-string' as const), field: fc.constantFrom(...STRING_FIELDS), pre: text, frag, post: text, long: fc.constantFrom(0, 0, 0, 16, 300, 70000, 1000000) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('relative-path' as const), field: fc.constantFrom(...PATH_FIELDS), frag }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('absolute-read-path' as const), field: fc.constantFrom(...READ_PATH_FIELDS), frag }) },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('wrong-type' as const), field: fc.constantFrom(...STRING_FIELDS, ...PATH_FIELDS, ...Object.keys(NUMBER_FIELDS), ...OBJECT_FIELDS), value: fc.constantFrom(...WRONG_TYPES) }) },
  { weight: 8, arbitrary: fc.constantFrom(...Object.keys(NUMBER_FIELDS)).chain((field) => fc.record({ kind: fc.constant('number-range' as const), field: fc.constant(field), value: fc.constantFrom(...(NUMBER_FIELDS[field] as number[])) })) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('cni-version' as const), value: fc.oneof(text, fc.constantFrom<unknown>('9.9.9', '1.1.0 ', '1.1', 'v1.1.0', '', null, 1.1, ['1.1.0'], {}, '1.1.0$(id)', '0.2.0', '2.0.0')) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('stdin-garbage' as const), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('', ' ', 'null', '[]', '"x"', '1', '{', '{"cniVersion":', '\u0000{}', '{}}')) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stdin-deep' as const), depth: fc.constantFrom(62, 63, 64, 1000, 100000, 1000000), wrapped: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stdin-huge' as const), mb: fc.constantFrom(2, 8, 17) }) },
  { weight: 4, arbitrary: frag.chain((f) => fc.record({ kind: fc.constant('gc-list' as const), value: fc.constantFrom(...BAD_GC_LISTS(f)) })) },
  { weight: 20, arbitrary: fc.record({ kind: fc.constant('env' as const), variable: fc.constantFrom('CNI_NETNS', 'CNI_IFNAME', 'CNI_CONTAINERID', 'CNI_COMMAND', 'CNI_PATH', 'CNI_ARGS'), how: fc.constantFrom('hostile', 'unset', 'special', 'special2'), frag }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('odd-env' as const), variable: fc.constantFrom(...ODD_ENV), odd: fc.constantFrom(...ODD), pre: fc.constantFrom('', 'n', 'net', '"', 'eth0') }) },
  { weight: 7, arbitrary: fc.record({ kind: fc.constant('benign' as const), how: fc.constantFrom('type' as const, 'extra-field' as const, 'cni-args' as const), frag }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('pf-list' as const), how: fc.constantFrom('duplicate' as const, 'empty' as const, 'too-many' as const, 'hostile-member' as const, 'unknown-pf' as const), frag }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('dpus' as const), how: fc.constantFrom('hostile-key' as const, 'proto-key' as const, 'entry-type' as const, 'entry-hostile' as const), frag }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('node-file' as const), path: fc.constantFrom(...NODE_FILE_PATHS) }) },
  // a remote VTEP of the other address family than localVtep: no VXLAN tunnel can join them
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('vtep-family' as const), remote: fc.constantFrom('2001:db8::1', '::ffff:198.51.100.2', 'fe80::1', '::'), at: fc.nat({ max: 3 }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('node-field' as const), field: fc.constantFrom(...NODE_FIELDS), same: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('node-path' as const), field: fc.constantFrom(...NODE_PATH_FIELDS), path: fc.constantFrom(...NODE_PATHS) }) },
);

type Command = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';

export interface FuzzCase {
  id: number;
  /** The mutation kind: the input's row in the summary. */
  kind: Mutation['kind'];
  label: string;
  command: Command;
  conf?: Record<string, unknown>;
  stdin?: string;
  env: Record<string, string>;
  /** CNI_IFNAME for the input and for the DEL that undoes a valid one (default eth0). */
  ifname?: string;
  /** Codes accepted, or 'ok' for inputs that are valid and must succeed (then DEL-ed). */
  expect: readonly number[] | 'ok';
  marker: string;
  /** Set when replaying a violation record: run exactly this. */
  recorded?: RunRecord;
  /** Output (stdout and stderr) must not match: file content the plugin must never quote. */
  mustNotMatch?: RegExp;
}

/** An object where the schema wants an object with only optional keys, or an empty VTEP list, is still valid. */
function stillValid(field: string, value: unknown): boolean {
  const plainObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  // a network config's dpu holds only its own settings (hwOffload) over the node file's: {} sets none of them
  const empty = plainObject && Object.keys(value).length === 0;
  return (['runtimeConfig', 'args', 'prevResult'].includes(field) && plainObject) || (field === 'dpu' && empty) || (field === 'dpu.remoteVteps' && Array.isArray(value) && value.length === 0);
}

function isNodeField(path: string): boolean {
  const [top, sub] = path.split('.');
  return ownerOf(top as string) === 'node' || (top === 'dpu' && sub !== undefined && ownerOf(`dpu.${sub}`) === 'node');
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur: Record<string, unknown> | unknown[] = obj;
  for (const k of keys.slice(0, -1)) {
    const next = (cur as Record<string, unknown>)[k];
    if (typeof next !== 'object' || next === null) (cur as Record<string, unknown>)[k] = /^\d+$/.test(k) ? [] : {};
    cur = (cur as Record<string, unknown>)[k] as Record<string, unknown>;
  }
  (cur as Record<string, unknown>)[keys.at(-1) as string] = value;
}

function deep(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

const NO_NUL = (s: string) => s.replace(/\0/g, '');

/** Turns one generated mutation into a concrete input; `base` is a valid config, `marker` unique to the input. */
export function buildCase(id: number, m: Mutation, base: Record<string, unknown>, cmd: Command, regularFile: string, node: Record<string, unknown> = {}): FuzzCase {
  const marker = `h6z${id}q`;
  const conf = structuredClone(base);
  const c: FuzzCase = { id, kind: m.kind, label: m.kind, command: cmd, conf, env: {}, expect: [E.config], marker };
  switch (m.kind) {
    case 'hostile-string': {
      const long = 'A'.repeat(m.long);
      setPath(conf, m.field, `${m.pre}${long}${marker}${m.frag}${m.post}`);
      c.label = `hostile ${m.field}`;
      break;
    }
    case 'relative-path':
      setPath(conf, m.field, `${marker}/${m.frag}`);
      c.label = `relative ${m.field}`;
      break;
    case 'absolute-read-path':
      setPath(conf, m.field, `/nonexistent/${marker}${NO_NUL(m.frag).replace(/[\n\r]/g, '')}`);
      c.command = 'ADD';
      c.label = `missing ${m.field}`;
      break;
    case 'wrong-type':
      // a number is the right type for a number field: give its text instead
      setPath(conf, m.field, m.field in NUMBER_FIELDS && typeof m.value === 'number' ? String(m.value) : m.value);
      c.label = `type ${m.field}=${JSON.stringify(m.value)}`;
      if (stillValid(m.field, m.value)) c.expect = 'ok';
      // a list of PF names is pf's other type: ['x'] is a PF that is not there
      if (m.field === 'pf' && Array.isArray(m.value) && m.value.length === 1 && m.value[0] === 'x') {
        c.command = 'ADD';
        c.expect = [101];
      }
      break;
    case 'number-range':
      setPath(conf, m.field, m.value);
      c.label = `range ${m.field}=${m.value}`;
      break;
    case 'cni-version':
      if (typeof m.value === 'string' && ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'].includes(m.value)) {
        conf.cniVersion = `${m.value}-${marker}`;
      } else {
        conf.cniVersion = typeof m.value === 'string' && m.value.length > 3 ? `${m.value}${marker}` : m.value;
      }
      c.label = 'cniVersion';
      c.expect = [E.version];
      break;
    case 'stdin-garbage': {
      delete c.conf;
      c.stdin = m.text;
      c.label = 'garbage stdin';
      let parsed: unknown;
      let ok = true;
      try {
        parsed = JSON.parse(m.text);
      } catch {
        ok = false;
      }
      c.expect = !ok || typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) ? [E.decode] : [E.version];
      break;
    }
    case 'stdin-deep':
      delete c.conf;
      c.label = `nested ${m.depth}${m.wrapped ? ' in a field' : ''}`;
      if (m.wrapped) {
        c.command = 'ADD';
        c.stdin = JSON.stringify({ ...base, [marker]: 0 }).replace(/}$/, `,"deep":${deep(m.depth)}}`);
        // an unknown field is ignored; nesting past MAX_JSON_DEPTH (the object itself is one level) is refused
        // before any work, so neither the plugin nor the IPAM plugin it hands the config to ever parses it
        c.expect = 1 + m.depth <= MAX_JSON_DEPTH ? 'ok' : [E.decode];
      } else {
        c.stdin = deep(m.depth);
        c.expect = [E.decode];
      }
      break;
    case 'stdin-huge': {
      delete c.conf;
      c.label = `${m.mb} MB stdin`;
      c.stdin = JSON.stringify({ ...base, padding: marker + 'x'.repeat(m.mb * 1024 * 1024) });
      c.expect = m.mb > 16 ? [E.decode] : 'ok';
      break;
    }
    case 'gc-list':
      c.command = 'GC';
      c.label = 'gc-list malformed';
      conf['cni.dev/valid-attachments'] = m.value;
      break;
    case 'env':
      c.command = 'ADD';
      c.label = `env ${m.variable} ${m.how}`;
      c.expect = [E.env];
      c.env = envMutation(m.variable, m.how, NO_NUL(m.frag), marker, regularFile);
      if (m.variable === 'CNI_ARGS' && m.how === 'hostile') c.expect = 'ok'; // unknown CNI_ARGS keys are ignored
      break;
    case 'odd-env':
      c.command = 'ADD';
      c.label = `odd ${m.variable}`;
      if (m.variable === 'CNI_IFNAME') {
        // the kernel's and libcni's rules: such names must be created as given and DEL-ed cleanly
        const name = `${m.pre}${m.odd}`.slice(0, 15);
        c.ifname = name;
        c.env = { CNI_IFNAME: name };
        // written out here, not taken from the plugin: Go's unicode.IsSpace (libcni), the kernel's isspace (incl. byte 0xa0), '%' templates
        const bad = /[/:%\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/.test(name) || Buffer.from(name).includes(0xa0);
        c.expect = bad || Buffer.byteLength(name) > 15 || name === '.' || name === '..' ? [E.env] : 'ok';
      } else if (m.variable === 'CNI_ARGS') {
        c.env = { CNI_ARGS: `IgnoreUnknown=1;X${marker}=${m.pre}${m.odd}` };
        c.expect = 'ok';
      } else if (m.variable === 'CNI_PATH') {
        c.env = { CNI_PATH: `/nonexistent/${marker}${m.odd}:${CNI_PATH}` };
        c.expect = 'ok';
      } else {
        c.env = { [m.variable]: m.variable === 'CNI_NETNS' ? `/run/netns/${marker}${m.odd}` : `${marker}${m.odd}` };
        c.expect = [E.env];
      }
      break;
    case 'benign':
      c.command = 'ADD';
      c.expect = 'ok';
      c.label = `benign ${m.how}`;
      if (m.how === 'type') conf.type = `${marker}${m.frag}`.slice(0, 64);
      if (m.how === 'extra-field') conf[`x${marker}${m.frag}`] = { v: `${marker}${m.frag}`, a: [marker] };
      if (m.how === 'cni-args') c.env = { CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${marker}${NO_NUL(m.frag).replace(/[;=]/g, '')}` };
      break;
    case 'pf-list': {
      c.command = 'ADD';
      c.label = `pf list ${m.how}`;
      const pf = String(node.pf ?? 'ens1f0np0');
      const member = `${marker}${m.frag}`;
      conf.pf = { duplicate: [pf, pf], empty: [], 'too-many': Array.from({ length: 17 }, (_, i) => `${marker}${i}`), 'hostile-member': [pf, member], 'unknown-pf': [`${marker}`.slice(0, 15)] }[m.how];
      if (m.how === 'unknown-pf') c.expect = [101];
      break;
    }
    case 'dpus': {
      c.command = 'ADD';
      c.label = `dpus ${m.how}`;
      const pf = String(node.pf ?? 'ens1f0np0');
      const key = { 'hostile-key': `${marker}${m.frag}`, 'proto-key': '__proto__', 'entry-type': pf, 'entry-hostile': pf }[m.how];
      // the node's DPU (the network config has none): a network config's dpus is the node owner's either way
      const dpu = (node.dpu ?? {}) as object;
      const value = m.how === 'entry-type' ? `${marker}` : m.how === 'entry-hostile' ? { ...dpu, host: `${marker}${m.frag}` } : dpu;
      // JSON text, so "__proto__" is an own key as a runtime's JSON would carry it
      c.stdin = JSON.stringify(conf).replace(/}$/, `,"dpus":{${JSON.stringify(key)}:${JSON.stringify(value)}}}`);
      break;
    }
    case 'vtep-family': {
      c.command = 'ADD';
      c.label = `remote VTEP ${m.remote} of the other family`;
      const dpu = { ...(base.dpu as Record<string, unknown>) };
      const remotes = [...((dpu.remoteVteps as string[] | undefined) ?? [])];
      remotes.splice(Math.min(m.at, remotes.length), 0, m.remote);
      conf.dpu = { ...dpu, remoteVteps: remotes };
      break;
    }
    case 'node-file':
      c.command = 'ADD';
      c.label = `nodeConfig ${m.path}`;
      conf.nodeConfig = m.path;
      c.mustNotMatch = NODE_FILE_LEAKS;
      break;
    case 'node-field': {
      // the node's own value (node file, here every one the base has) is accepted; anything else is the node owner's
      const own = valueAt(node, m.field);
      const same = m.same && own !== undefined;
      setPath(conf, m.field, same ? structuredClone(own) : otherValue(m.field, marker));
      c.label = `node field ${m.field}${same ? ' (the node\'s value)' : ''}`;
      c.expect = same ? 'ok' : [E.config];
      break;
    }
    case 'node-path':
      c.command = 'ADD';
      c.label = `${m.field} ${m.path}`;
      conf[m.field] = m.path === FIFO_NAME ? join(dirname(regularFile), FIFO_NAME) : m.path;
      break;
  }
  // a mutation of a node field is refused by the ownership check, whatever the value's own validity
  if (['wrong-type', 'hostile-string', 'relative-path', 'absolute-read-path', 'number-range', 'pf-list', 'dpus'].includes(m.kind) && 'field' in m && isNodeField(m.field)) c.expect = [E.config];
  if (m.kind === 'pf-list' || m.kind === 'dpus') c.expect = [E.config];
  if (c.expect === 'ok') c.command = 'ADD';
  return c;
}

function envMutation(variable: string, how: string, f: string, marker: string, regularFile: string): Record<string, string> {
  if (how === 'unset') {
    if (variable === 'CNI_ARGS') return { CNI_ARGS: `${marker}` }; // optional: malformed instead
    return { [variable]: UNSET };
  }
  const special: Record<string, string> = {
    CNI_NETNS: regularFile,
    CNI_IFNAME: `eth0123456789012${marker}`,
    CNI_CONTAINERID: `a${'b'.repeat(300)}${marker}`,
    CNI_COMMAND: `ADD ${marker}`,
    CNI_PATH: '', // empty: "not set"
    CNI_ARGS: `MAC=${marker}`,
  };
  const special2: Record<string, string> = {
    CNI_NETNS: '/proc/self/ns/net', // the plugin's own (host) namespace
    CNI_IFNAME: 'é'.repeat(8), // 8 characters, 16 bytes
    CNI_CONTAINERID: '',
    CNI_COMMAND: 'add',
    CNI_PATH: '',
    CNI_ARGS: `MAC=02:00:00:00:00:0g;K=${marker}`,
  };
  const hostile: Record<string, string> = {
    CNI_NETNS: `/run/netns/${marker}${f}`,
    CNI_IFNAME: `e/${marker}${f}`.slice(0, 40),
    CNI_CONTAINERID: `-${marker}${f}`,
    CNI_COMMAND: `${marker}${f}`,
    CNI_PATH: UNSET,
    CNI_ARGS: `IgnoreUnknown=1;X${marker}=${f.replace(/[;=]/g, '')}`,
  };
  const table = how === 'special' ? special : how === 'special2' ? special2 : hostile;
  return { [variable]: table[variable] as string };
}

export interface FuzzOptions {
  seed: number;
  inputs: number;
  width?: number;
  /** Run only these of the `inputs` generated inputs (--index; with `replay`, in addition to it). */
  only?: readonly number[];
  /** Run exactly these recorded runs instead (--replay): same env, same stdin. */
  replay?: readonly RunRecord[];
  /** Where progress lines go (stderr in npm run stress). */
  progress?: (line: string) => void;
}

/**
 * DPU timeout in the fuzz config: fuzz is about input handling, and a loaded machine can take seconds for an
 * SSH handshake; 5 s (the e2e default) turned valid inputs into "DPU timed out" failures under load.
 */
export const FUZZ_DPU_TIMEOUT_MS = 30000;
/** The harness kills one input after this long: well above the plugin's own limits (IPAM 60 s, DPU above). */
export const FUZZ_KILL_AFTER_MS = 240000;

/** The fuzz inputs for one seed: depends on nothing else (not on outcomes, timing or other scenarios). */
export function fuzzCases(seed: number, inputs: number, base: Record<string, unknown>, regularFile: string, node: Record<string, unknown> = {}): FuzzCase[] {
  const muts = fc.sample(fc.tuple(mutation, fc.constantFrom<Command>('ADD', 'ADD', 'ADD', 'DEL', 'CHECK', 'STATUS')), { seed, numRuns: inputs });
  return muts.map(([m, cmd], i) => buildCase(i, m, base, cmd, regularFile, node));
}

/** The tag runPlugin keeps in each run record: enough to find the input again and judge a replay. */
type FuzzTag = { scenario: 'fuzz'; seed: number; inputs: number; index: number; kind: string; label: string; expect: FuzzCase['expect']; width: number; alongside: number[] };

/** A recorded fuzz run back as a case: its exact env and stdin. */
export function caseFromRecord(run: RunRecord): FuzzCase {
  const tag = run.tag as unknown as FuzzTag;
  return { id: tag.index, kind: tag.kind as Mutation['kind'], label: tag.label, command: (run.env.CNI_COMMAND ?? 'ADD') as FuzzCase['command'], stdin: run.stdin, env: run.env, expect: tag.expect, marker: `h6z${tag.index}q`, recorded: run };
}

/** Generates and runs `inputs` hostile inputs on site `s`; returns the tally. */
export async function fuzz(tb: Testbed, s: Site, o: FuzzOptions): Promise<Tally> {
  const t = newTally('fuzz (hostile input)');
  const width = o.width ?? 3;
  const rec = forcedWrapper(tb, 'fuzz-record');
  const ipam = hostLocal(tb, s, '10.120.0.0/24', '10.120.0.10', '10.120.0.250', 'fuzz');
  const opts = { name: 'fuzz', vni: 4242, ipam, dpu: { privateKeyFile: rec.key, timeoutMs: FUZZ_DPU_TIMEOUT_MS } };
  const base = netConf(tb, s, opts);
  // the node file's values (what a network config may repeat), and every input runs with that node file
  const node = splitByOwner(legacyConf(tb, s, opts)).node;
  const baseEnv = nodeEnv(s, base);
  const regularFile = join(stressDir(tb), 'regular-file');
  writeFileSync(regularFile, 'not a namespace\n');
  const stateDirs = [node.stateDir as string, ipam.dataDir as string];
  // node-path inputs name these: none may be opened (a FIFO's reader would unblock, a file's times would move)
  const fifo = join(stressDir(tb), FIFO_NAME);
  rmSync(fifo, { force: true });
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  const fifoReader = spawn('sh', ['-c', 'exec cat "$0" >/dev/null', fifo], { stdio: 'ignore' });
  const rcTimes = () => ['/root/.bashrc', '/root/.profile', '/etc/profile'].map((f) => (existsSync(f) ? `${f} ${statSync(f).mtimeMs} ${statSync(f).size}` : `${f} absent`)).join('\n');
  const rcBefore = rcTimes();
  const netns = Array.from({ length: Math.max(width, ...(o.replay ?? []).map((r) => Number((r.tag as { width?: number } | undefined)?.width ?? 0))) }, (_, w) => container(`fz${w}`));
  // one valid ADD and DEL first: the base config works, and the state directories exist before the snapshot
  for (const command of ['ADD', 'DEL']) {
    const warm = await runPlugin(s, base, { command, containerId: 'fz-warmup', netns: netns[0] });
    if (!expectSuccess(t, `warm-up ${command}`, warm)) return t;
  }
  const before = hostSnapshot(s, stateDirs);
  const ovsBefore = ovsState(s.name);
  const replayed = (o.replay ?? []).map(caseFromRecord);
  const generated = o.only || !o.replay ? fuzzCases(o.seed, o.inputs, base, regularFile, node).filter((c) => !o.only || o.only.includes(c.id)) : [];
  const cases = [...replayed, ...generated.filter((c) => !replayed.some((r) => r.id === c.id))];
  const byId = new Map(cases.map((c) => [c.id, c]));
  const inFlight = new Set<number>();
  const retries = { n: 0 };
  let done = 0;
  await parallel(width, cases.map((c) => async (w: number) => {
    const tag: FuzzTag = { scenario: 'fuzz', seed: o.seed, inputs: o.inputs, index: c.id, kind: c.kind, label: c.label, expect: c.expect, width, alongside: [...inFlight] };
    inFlight.add(c.id);
    try {
      await runCase(shape(t, c.kind), s, { ...c, env: { ...baseEnv, ...c.env } }, base, netns[w] as string, tag, retries);
    } finally {
      inFlight.delete(c.id);
      done += 1;
      if (o.progress && done % 500 === 0) o.progress(`fuzz: ${done}/${cases.length} inputs, ${t.violations.length} violations`);
    }
  }));

  const commands = recordedCommands(rec.log);
  const dump = [ovsDump(s.name), ...tb.sites.filter((x) => x.name !== s.name).map((x) => ovsDump(x.name))].join('\n');
  // DPU commands name their container (external_ids): only inputs that are valid may have sent any
  for (const cmd of commands) {
    for (const [, id] of cmd.matchAll(/fz-(\d+)\b/g)) {
      const c = byId.get(Number(id));
      if (c && c.expect !== 'ok') violation(shape(t, c.kind), `input ${c.id} (${c.label}) was refused, but the DPU received a command for it: ${cmd.slice(0, 200)}`, { dpuCommand: cmd, input: c.id });
    }
  }
  for (const c of cases) {
    const row = shape(t, c.kind);
    const hit = commands.find((cmd) => cmd.includes(c.marker));
    if (hit && c.expect !== 'ok') violation(row, `input ${c.id} (${c.label}): a DPU command carries its hostile value: ${hit.slice(0, 200)}`, { dpuCommand: hit, input: c.id });
    if (hit && c.expect === 'ok') violation(row, `input ${c.id} (${c.label}): an ignored field reached the DPU: ${hit.slice(0, 200)}`, { dpuCommand: hit, input: c.id });
    if (dump.includes(c.marker)) violation(row, `input ${c.id} (${c.label}): its value is in the OVS database`, { input: c.id });
  }
  if (fifoReader.exitCode !== null) violation(t, `a network config's path opened the FIFO ${fifo} (its reader unblocked)`);
  fifoReader.kill('SIGKILL');
  rmSync(fifo, { force: true });
  const rcAfter = rcTimes();
  if (rcAfter !== rcBefore) violation(t, `a shell rc file changed: ${diffLines(rcBefore, rcAfter)}`);
  const after = hostSnapshot(s, stateDirs);
  if (after !== before) violation(t, `host state changed: ${diffLines(before, after)}`, { hostBefore: before, hostAfter: after });
  const ovsAfter = ovsState(s.name);
  if (JSON.stringify(ovsAfter) !== JSON.stringify(ovsBefore)) violation(t, `OVS changed on DPU ${s.name}: bridges ${ovsAfter.bridges.join(',')}, ${ovsAfter.ports.length} container ports`, { ovsBefore, ovsAfter });
  o.progress?.(`fuzz: ${cases.length} inputs (${t.shapes.map((r) => `${r.scenario}: ${r.inputs}`).join(', ')}); ${commands.length} DPU commands recorded; ${retries.n} code-${TRY_AGAIN} retries`);
  return t;
}

/**
 * CNI's "try again later": the answer when the DPU does not finish an SSH handshake within dpu.timeoutMs, which a
 * loaded machine can cause for a valid input (seen at load 60: "did not complete the SSH handshake within 5000 ms").
 * A runtime retries it (after a DEL, for an ADD), so the harness does too, a bounded number of times; only a
 * valid input still refused after that is a violation.
 */
const TRIES = 3;

async function runCase(t: Tally, s: Site, c: FuzzCase, base: Record<string, unknown>, netns: string, tag: FuzzTag, retries: { n: number }): Promise<void> {
  t.inputs += 1;
  const containerId = `fz-${c.id}`;
  const ifname = c.ifname ?? 'eth0';
  const call = { command: c.command, containerId, netns, ifname };
  const input = (attempt: number): Promise<Outcome> => c.recorded
    ? runRecorded(c.recorded.hostNetns, c.recorded.env, c.recorded.stdin, c.recorded.killAfterMs, { ...tag, attempt })
    : runPlugin(s, c.conf, call, { env: c.env, stdin: c.stdin, timeoutMs: FUZZ_KILL_AFTER_MS, tag: { ...tag, attempt } });
  // valid after all: undone with a plain, valid DEL (in the namespace the input named)
  const del = async (attempt: number): Promise<Outcome> => {
    const out = await runPlugin(s, base, { command: 'DEL', containerId, netns: c.recorded?.env.CNI_NETNS ?? netns, ifname: c.recorded?.env.CNI_IFNAME ?? ifname }, { timeoutMs: FUZZ_KILL_AFTER_MS, tag: { ...tag, cleanup: 'DEL', attempt } });
    timed(t, 'DEL (after a valid fuzz input)', out.ms);
    return out;
  };
  const what = `input ${c.id} (${c.label}, ${c.command})`;
  let out = await input(1);
  timed(t, `${c.command} ${c.label}`, out.ms);
  if (c.mustNotMatch?.test(out.stdout + out.stderr)) violation(t, `${what}: output quotes a file it must not: ${(out.stdout + out.stderr).slice(0, 300)}`, { run: out.run });
  if (c.expect !== 'ok') return expectCniError(t, what, out, c.expect);
  for (let attempt = 2; attempt <= TRIES && out.json?.code === TRY_AGAIN; attempt++) {
    retries.n += 1;
    await del(attempt - 1);
    out = await input(attempt);
    timed(t, `${c.command} ${c.label} (retried)`, out.ms);
  }
  if (!expectSuccess(t, what, out)) return;
  let d = await del(1);
  for (let attempt = 2; attempt <= TRIES && d.json?.code === TRY_AGAIN; attempt++) {
    retries.n += 1;
    d = await del(attempt);
  }
  expectSuccess(t, `${what}: DEL`, d);
}
