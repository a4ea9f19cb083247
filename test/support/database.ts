// Gives a test file a database of its own, cloned from the run's migrated template.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { withDatabaseName } from './postgres-admin.js';
import './provided.js';

export interface TestDatabase {
  database: Database;
  /** Closes the connection and deletes the copy. */
  dispose: () => Promise<void>;
}

export async function openTestDatabase(): Promise<TestDatabase> {
  return inject('dbKind') === 'postgres' ? clonePostgres() : copyPglite();
}

async function copyPglite(): Promise<TestDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-db-'));
  await cp(inject('pgliteTemplateDir'), dir, { recursive: true });
  const database = await openDatabase({ kind: 'pglite', dataDir: dir });
  return {
    database,
    dispose: async () => {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function clonePostgres(): Promise<TestDatabase> {
  const clone = await clonePostgresDatabase();
  const database = await openDatabase({ kind: 'postgres', url: clone.url, poolSize: 10 });
  return {
    database,
    dispose: async () => {
      await database.close();
      await clone.drop();
    },
  };
}

/**
 * A PostgreSQL database of the file's own, cloned from the run's migrated template, for
 * processes that open it themselves (test/support/cluster.ts). `drop` ends their connections.
 */
export async function clonePostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = inject('postgresAdminUrl');
  const template = inject('postgresTemplateDb');
  const name = `${template.replace(/_template$/, '')}_${randomBytes(4).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  return {
    url: withDatabaseName(adminUrl, name),
    drop: () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  // CREATE DATABASE from one template is refused while another clone of it is in progress.
  for (let attempt = 0; ; attempt++) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
      return;
    } catch (error) {
      const busy = (error as { code?: string }).code === '55006';
      if (!busy || attempt >= 20) throw error;
    } finally {
      await client.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
  }
}
