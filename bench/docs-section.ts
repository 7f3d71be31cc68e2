import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/testkit/testbed';

/** The document the benchmarks write their latest figures into (between their markers). */
export const BENCHMARKS_DOC = join(ROOT, 'docs', 'benchmarks.md');

export const sectionMarks = (name: string) => ({ start: `<!-- bench:${name}:start -->`, end: `<!-- bench:${name}:end -->` });

/** text with what stands between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` replaced by md. */
export function replaceSection(text: string, name: string, md: string): string {
  const { start: startMark, end: endMark } = sectionMarks(name);
  const start = text.indexOf(startMark);
  const end = text.indexOf(endMark);
  if (start === -1 || end < start) throw new Error(`docs/benchmarks.md has no ${startMark} ... ${endMark} section`);
  return `${text.slice(0, start + startMark.length)}\n${md}${text.slice(end)}`;
}

/** Rewrites the bench:NAME section of docs/benchmarks.md. */
export function updateBenchmarksSection(name: string, md: string): void {
  writeFileSync(BENCHMARKS_DOC, replaceSection(readFileSync(BENCHMARKS_DOC, 'utf8'), name, md));
}
