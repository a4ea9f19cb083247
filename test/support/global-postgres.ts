// Migrates one template database per run on the real PostgreSQL; each test file gets its own
// database cloned from it with CREATE DATABASE … TEMPLATE (immich's approach).
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/client.js';
import { dropTestDatabases, withDatabaseName } from './postgres-admin.js';
import './provided.js';

export default async function setup(project: TestProject) {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const prefix = `parley_t${process.pid}`;
  const templateDb = `${prefix}_template`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await dropTestDatabases(admin, prefix);
  await admin.query(`CREATE DATABASE "${templateDb}"`);
  const database = await openDatabase({
    kind: 'postgres',
    url: withDatabaseName(adminUrl, templateDb),
    poolSize: 2,
  });
  await database.migrate();
  await database.close();
  await admin.end();

  project.provide('dbKind', 'postgres');
  project.provide('postgresAdminUrl', adminUrl);
  project.provide('postgresTemplateDb', templateDb);
  return async () => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await dropTestDatabases(client, prefix);
    await client.end();
  };
}
