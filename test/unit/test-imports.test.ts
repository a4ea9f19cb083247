// Issue 8, acceptance 13: no file under test/ imports a test file. Importing one registers its
// tests again inside the importer (the authorization matrix once re-ran the local-model tests to
// borrow a constant); what tests share belongs in test/support.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const TEST_ROOT = path.resolve(import.meta.dirname, '..');

/** The module specifier of `from '…'`, `import '…'` and `import('…')`. */
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*(['"])([^'"\n]+)\1/g;
const TEST_FILE = /\.test(?:\.[cm]?[jt]s)?$/;

/** Every specifier in a source text that names a test file. */
function testImports(source: string): string[] {
  return [...source.matchAll(SPECIFIER)].map((m) => m[2]!).filter((s) => TEST_FILE.test(s));
}

describe('test files stand on their own', () => {
  it('finds static, side-effect, re-export and dynamic imports of a test file', () => {
    // Spelled with T so this file's own text imports no test file.
    const T = '.test';
    const source = [
      `import { TEST_MODEL } from './ai-local${T}.js';`,
      `import "../api/auth${T}.ts";`,
      `export * from './x${T}';`,
      `const m = await import('./y${T}.mjs');`,
      `import { x } from '../support/test-model.js';`,
      `import { it } from 'vitest';`,
      `import type { Envelope } from './api-client.js';`,
    ].join('\n');
    expect(testImports(source)).toEqual([
      `./ai-local${T}.js`,
      `../api/auth${T}.ts`,
      `./x${T}`,
      `./y${T}.mjs`,
    ]);
  });

  it('no file under test/ imports a test file', async () => {
    const files = (await readdir(TEST_ROOT, { recursive: true })).filter((f) =>
      /\.[cm]?[jt]s$/.test(f),
    );
    expect(files.length).toBeGreaterThan(20);
    const offenders: string[] = [];
    for (const file of files) {
      const source = await readFile(path.join(TEST_ROOT, file), 'utf8');
      for (const specifier of testImports(source)) offenders.push(`test/${file} → ${specifier}`);
    }
    expect(offenders, 'move what they share into test/support').toEqual([]);
  });
});
