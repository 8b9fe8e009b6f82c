/** The package's public surface: every entry exports exactly what README's "Package entries" table lists. */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  exports: Record<string, { import?: string }>;
};

/** The source module behind a package entry's built file (dist/x/y.js -> x/y.ts). */
function sourceOf(built: string): URL {
  return new URL(built.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'), root);
}

/** README's table: entry name -> the export names listed for it. */
function listed(): Map<string, Set<string>> {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const section = readme.slice(readme.indexOf('## Package entries'), readme.indexOf('## Architecture'));
  const table = new Map<string, Set<string>>();
  for (const line of section.split('\n')) {
    const m = /^\| `(nsgi[^`]*)` \| (.*) \|$/.exec(line);
    if (m === null) continue;
    const names = [...m[2]!.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((x) => x[1]!);
    // "(also `default`)" names the default export.
    table.set(m[1]!, new Set(names));
  }
  return table;
}

describe('package entries', () => {
  const table = listed();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (target.import === undefined) continue;
    const entry = subpath === '.' ? 'nsgi' : `nsgi/${subpath.slice(2)}`;
    it(`${entry} exports exactly what README lists`, async () => {
      const module = (await import(sourceOf(target.import!).href)) as Record<string, unknown>;
      assert.ok(table.has(entry), `README's Package entries table has no row for ${entry}`);
      assert.deepEqual(Object.keys(module).sort(), [...table.get(entry)!].sort());
    });
  }

  it('no module is marked @internal: what is internal is simply not exported from an entry', () => {
    for (const dir of ['src', 'adapters']) {
      for (const file of readdirSync(new URL(`${dir}/`, root), { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.ts')) continue;
        assert.ok(!readFileSync(new URL(`${dir}/${file}`, root), 'utf8').includes('@internal'), `${dir}/${file}`);
      }
    }
  });
});
