import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Every relative link in README.md, CONTRIBUTING.md and docs/**\/*.md resolves (file, and #anchor when given);
 * every cni-conf/ file is referenced; the README stays short and no doc names an internal issue number.
 */

const ROOT = resolve(__dirname, '..', '..');

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : []));
}

const DOCS = [join(ROOT, 'README.md'), join(ROOT, 'CONTRIBUTING.md'), join(ROOT, 'CHANGELOG.md'), ...markdownFiles(join(ROOT, 'docs'))].filter((f) => existsSync(f));

/** The text without fenced code blocks and inline code, where brackets are not links. */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
export function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = (m[1] as string).toLowerCase().replace(/<[^>]+>/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of md.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1] as string);
  return out;
}

function linksOf(md: string): string[] {
  const text = prose(md);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] as string);
  const refs = [...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1] as string);
  return [...inline, ...refs].filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l));
}

describe('documentation links', () => {
  it.each(DOCS.map((f) => [relative(ROOT, f), f]))('%s: every relative link resolves', (_name, file) => {
    const md = readFileSync(file, 'utf8');
    const broken: string[] = [];
    for (const link of linksOf(md)) {
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
      if (!existsSync(target)) {
        broken.push(`${link}: no such file`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${link}: no heading #${anchor}`);
      if (anchor !== undefined && statSync(target).isDirectory()) broken.push(`${link}: anchor on a directory`);
    }
    expect(broken).toEqual([]);
  });

  it('every cni-conf/ file is linked from the docs', () => {
    const linked = new Set(DOCS.flatMap((f) => linksOf(readFileSync(f, 'utf8')).map((l) => resolve(dirname(f), l.split('#')[0] as string))));
    const files = readdirSync(join(ROOT, 'cni-conf')).map((n) => join(ROOT, 'cni-conf', n));
    expect(files.filter((f) => !linked.has(f)).map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('the README stays a few screens', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThan(300);
  });

  it('no doc names an internal issue number (readers have no such tracker)', () => {
    const hits = DOCS.flatMap((f) => [...prose(readFileSync(f, 'utf8')).matchAll(/\bissue\s*#?\d+/gi)].map((m) => `${relative(ROOT, f)}: ${m[0]}`));
    expect(hits).toEqual([]);
  });

  it('the anchor rule matches GitHub for the headings these docs use', () => {
    expect([...anchorsOf('# Install on real hosts and DPUs\n## The `dpu` object\n## Host overhead (the paper\'s Fig. 4)\n## A\n## A\n')]).toEqual([
      'install-on-real-hosts-and-dpus', 'the-dpu-object', 'host-overhead-the-papers-fig-4', 'a', 'a-1',
    ]);
  });
});
