import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCHMARKS_DOC, replaceSection, sectionMarks } from './docs-section';
import { README_BEGIN, README_END } from './overhead/report';

describe('the benchmarks write their figures into docs/benchmarks.md', () => {
  it('which has every marker pair the benches look for', () => {
    const doc = readFileSync(BENCHMARKS_DOC, 'utf8');
    for (const name of ['latency', 'scale']) {
      const { start, end } = sectionMarks(name);
      expect(doc.indexOf(start)).toBeGreaterThan(-1);
      expect(doc.indexOf(end)).toBeGreaterThan(doc.indexOf(start));
    }
    expect(doc.indexOf(README_END)).toBeGreaterThan(doc.indexOf(README_BEGIN));
    expect(doc.indexOf(README_BEGIN)).toBeGreaterThan(-1);
  });

  it('the host-overhead table stands once, in the results block: docs/overhead holds only the data and the chart', () => {
    expect(existsSync(join(BENCHMARKS_DOC, '..', 'overhead', 'results.json'))).toBe(true);
    expect(existsSync(join(BENCHMARKS_DOC, '..', 'overhead', 'results.md'))).toBe(false);
  });

  it('replaceSection swaps only what stands between one pair of markers', () => {
    const text = 'a\n<!-- bench:x:start -->\nold\n<!-- bench:x:end -->\nb\n<!-- bench:y:start -->\nkeep\n<!-- bench:y:end -->\n';
    expect(replaceSection(text, 'x', 'new\n')).toBe('a\n<!-- bench:x:start -->\nnew\n<!-- bench:x:end -->\nb\n<!-- bench:y:start -->\nkeep\n<!-- bench:y:end -->\n');
    expect(() => replaceSection(text, 'z', 'n')).toThrow(/no <!-- bench:z:start -->/);
  });
});
