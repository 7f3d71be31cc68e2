import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIELD_OWNERSHIP } from '../../src/config/ownership';

/** docs/security.md's table says what src/config/ownership.ts says: each field once, with its owner and delegability. */
test('docs/security.md lists every field with the owner and delegability of the ownership table', () => {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'security.md'), 'utf8');
  const rows = new Map<string, { owner: string; delegable: boolean }>();
  for (const line of doc.split('\n')) {
    const m = /^\| ((?:`[^`]+`(?:, )?)+) \| (network|node) \|(?: (yes))? \|/.exec(line);
    if (!m) continue;
    for (const [, field] of (m[1] as string).matchAll(/`([^`]+)`/g)) rows.set(field as string, { owner: m[2] as string, delegable: m[3] === 'yes' });
  }
  expect([...rows.keys()].sort()).toEqual(FIELD_OWNERSHIP.map((f) => f.field).sort());
  for (const f of FIELD_OWNERSHIP) expect([f.field, rows.get(f.field)]).toEqual([f.field, { owner: f.owner, delegable: f.delegable === true }]);
});
