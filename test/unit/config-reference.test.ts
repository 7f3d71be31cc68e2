import { readFileSync } from 'node:fs';
import { DOC, referenceRows, withReference } from '../../scripts/config-reference/generate';
import { FIELD_DOCS } from '../../scripts/config-reference/fields';

describe('docs/configuration.md and the schema', () => {
  it('every schema field has a meaning in scripts/config-reference/fields.ts', () => {
    expect(referenceRows().filter((r) => r.meaning === undefined).map((r) => r.path)).toEqual([]);
  });

  it('every documented field is in the schema', () => {
    const paths = new Set(referenceRows().map((r) => r.path));
    expect(Object.keys(FIELD_DOCS).filter((p) => !paths.has(p))).toEqual([]);
  });

  it('the generated reference is up to date (npm run docs:config rewrites it)', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(withReference(doc)).toBe(doc);
  });
});
