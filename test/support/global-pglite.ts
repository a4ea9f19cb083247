// Migrates one PGlite data directory per run; each test file copies it (~0.3 s) instead of
// booting and migrating a new database (~4 s).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.js';
import './provided.js';

export default async function setup(project: TestProject) {
  const root = await mkdtemp(path.join(tmpdir(), 'parley-test-'));
  const templateDir = path.join(root, 'template');
  const database = await openDatabase({ kind: 'pglite', dataDir: templateDir });
  await database.migrate();
  await database.close();
  project.provide('dbKind', 'pglite');
  project.provide('pgliteTemplateDir', templateDir);
  return async () => {
    await rm(root, { recursive: true, force: true });
  };
}
