import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/testkit/testbed';

/** Replaces what stands between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in README.md with md. */
export function updateReadmeSection(name: string, md: string): void {
  const startMark = `<!-- bench:${name}:start -->`;
  const endMark = `<!-- bench:${name}:end -->`;
  const file = join(ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(startMark);
  const end = text.indexOf(endMark);
  if (start === -1 || end < start) throw new Error(`README.md has no ${startMark} ... ${endMark} section`);
  writeFileSync(file, `${text.slice(0, start + startMark.length)}\n${md}${text.slice(end)}`);
}
